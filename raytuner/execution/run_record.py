"""What a run says about itself: the ``experiment_started`` and ``experiment_finished`` events,
and ``status.json`` with ``experiment.parquet`` (what ``raytuner ls`` reads)."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raytuner.errors import is_storage_full
from raytuner.execution.events import Event, EventKind
from raytuner.execution.full_storage import rewrite_in_place, write_status
from raytuner.results import layout, remote
from raytuner.results.experiment_table import write_experiment_table
from raytuner.results.records import ExperimentBook, TrialStatus
from raytuner.spec.loader import Experiment

if TYPE_CHECKING:
    from raytuner.execution.runner import RunSummary


class RunState(str, Enum):
    RUNNING = "running"
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"
    FAILED = "failed"


def started_event(
    experiment: Experiment,
    location: str,
    total_trials: int,
    ray: str,
    cluster: dict[str, float],
    placement: Any,
    awaits_node: dict[str, Any] | None,
    told: int = 0,
) -> Event:
    """``experiment_started``: what runs, where (``ray``: the Ray's address, or ``inline``) and how.

    ``location``: the experiment's folder, or its URI on object storage. ``told``: the earlier
    trials a warm start told the searcher (0: none, or a restored searcher).
    """
    spec = experiment.spec
    warm = spec.search.warm_start
    return Event(
        EventKind.EXPERIMENT_STARTED,
        {
            "name": spec.name,
            "folder": location,
            "total_trials": total_trials,
            "metric": spec.metric,
            "mode": spec.mode.value,
            "algorithm": spec.search.algorithm.value,
            "scheduler": spec.scheduler.type.value,
            "ray": ray,
            "cluster_cpus": cluster.get("CPU", 0),
            "cluster_gpus": cluster.get("GPU", 0),
            "placement": placement.to_json(),
            "awaits_node": awaits_node,
            "warm_start": None if warm is None or not told else _warm_start_data(warm.experiment, told),
        },
    )


def _warm_start_data(experiment: str, told: int) -> dict[str, Any]:
    trials = "trial" if told == 1 else "trials"
    line = f"warm start: the searcher was told {told} finished {trials} of experiment '{experiment}'"
    return {"experiment": experiment, "trials": told, "line": line}


class StatusFile:
    """``status.json`` (what ``raytuner ls`` reads without opening Parquet) and ``experiment.parquet``."""

    def __init__(self, folder: Path, experiment: Experiment, book: ExperimentBook, started: float) -> None:
        self.folder = folder
        self.experiment = experiment
        self.book = book
        self.started = started
        self.written = False  # whether status.json holds the state last written

    def start(self) -> None:
        """Write the run's start (``running``). A storage too full to record it (status.json
        rewritten in place, then ``experiment.parquet`` refused) leaves status.json as it was:
        it would say ``running`` for a run that never started."""
        path = self.folder / layout.STATUS
        previous = path.read_bytes() if path.is_file() else None
        try:
            self.write(RunState.RUNNING)
        except OSError as exc:
            if self.written and is_storage_full(exc):
                with contextlib.suppress(OSError):
                    if previous is None:
                        path.unlink()
                    else:
                        rewrite_in_place(path, previous)
                    self.written = False
            raise

    def write(self, state: RunState, error: str | None = None) -> None:
        """Write ``status.json``, then ``experiment.parquet``. With the storage full, status.json
        is overwritten in place (it fits in the room the old one took)."""
        spec = self.experiment.spec
        best = self.book.best
        ended = None if state is RunState.RUNNING else time.time()
        self.written = False
        write_status(
            self.folder / layout.STATUS,
            {
                "name": spec.name,
                "folder": self.folder.name,
                "state": state.value,
                "metric": spec.metric,
                "mode": spec.mode.value,
                "algorithm": spec.search.algorithm.value,
                "scheduler": spec.scheduler.type.value,
                "started_at": self.started,
                "ended_at": ended,
                "duration_s": None if ended is None else ended - self.started,
                "trials": {status.value: n for status, n in self.book.counts().items()},
                "best": None
                if best is None or self.book.multi_objective  # several metrics: no one best, a front
                else {"trial_id": best.trial_id, "value": best.value, "iteration": best.iteration, "config": best.config},
                **_front_data(self.book),
                "error": error,
                "driver": {"pid": os.getpid(), "hostname": socket.gethostname()},
            },
        )
        self.written = True
        write_experiment_table(self.folder, self.experiment, state.value, self.started, ended, error)


def _front_data(book: ExperimentBook) -> dict[str, Any]:
    """Multi-objective runs: the objectives and the Pareto front's size and trials (nothing otherwise)."""
    if not book.multi_objective:
        return {}
    front = book.front()
    return {
        "objectives": [{"metric": metric, "mode": mode} for metric, mode in book.objectives],
        "front": {"size": len(front), "trial_ids": [record.trial_id for record in front]},
    }


def display(folder: Path) -> str:
    bucket = remote.remote_of(folder)
    return bucket.uri if bucket is not None else str(folder)


def finish_data(summary: RunSummary) -> dict[str, Any]:
    best = summary.book.best
    counts = summary.book.counts()
    return {
        "name": summary.name,
        "folder": summary.location,
        "state": summary.state.value,
        "duration_s": round(summary.duration_s, 3),
        "trials": {status.value: counts[status] for status in TrialStatus},
        "best": None
        if best is None or summary.book.multi_objective
        else {"trial_id": best.trial_id, "value": best.value, "config": best.config},
        **_front_data(summary.book),
        "failed": summary.failed,
        "errors": summary.errors_at if summary.failed else None,
        "error": summary.error,
        "exit_code": int(summary.exit_code),
        "hint": summary.hint,
    }
