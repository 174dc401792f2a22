"""What raytuner knows about an experiment while it runs: one record per trial.

This is the source of truth for progress, the Parquet tables and the summary. Ray's
``ResultGrid`` is not used for metrics: with per-trial logger files off it cannot read them.

A finished trial's record is let go once the trials table holds it (:meth:`ExperimentBook.retire`):
what the run still needs of it (the counts, the best few for the summary, the Pareto front) is
kept in :class:`Retired`, so a run's memory does not grow with its trials.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, TypeGuard


class TrialStatus(str, Enum):
    """A trial's state. ``stopped`` means stopped early by the scheduler."""

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    STOPPED = "stopped"
    ERROR = "error"

    @property
    def finished(self) -> bool:
        return self in (TrialStatus.COMPLETED, TrialStatus.STOPPED, TrialStatus.ERROR)


# Keys Ray adds to every result; they are columns of their own or not worth keeping.
RAY_RESULT_KEYS = frozenset(
    {
        "config",
        "trial_id",
        "experiment_id",
        "date",
        "timestamp",
        "time_this_iter_s",
        "time_total_s",
        "pid",
        "hostname",
        "node_ip",
        "time_since_restore",
        "iterations_since_restore",
        "timesteps_since_restore",
        "training_iteration",
        "done",
        "experiment_tag",
        "checkpoint_dir_name",
        "should_checkpoint",
        "timesteps_total",
        "episodes_total",
        "warmup_time",
    }
)


def metrics_of(result: Mapping[str, Any]) -> dict[str, Any]:
    """The user's metrics in a Ray result, nested dicts flattened with '/', and a numpy or torch
    scalar (``np.float32(0.3)``, a 0-d tensor) as the Python value it holds, as Ray Tune takes it."""
    flat: dict[str, Any] = {}
    for key, value in result.items():
        if key in RAY_RESULT_KEYS or key.startswith("__"):
            continue
        _flatten(str(key), value, flat)
    return flat


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _flatten(f"{prefix}/{key}", inner, out)
    elif getattr(value, "shape", None) == () and callable(getattr(value, "item", None)):
        out[prefix] = value.item()
    else:
        out[prefix] = value


def is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def rankable(status: str, value: Any) -> bool:
    """Whether a trial takes part in rankings (``best``, run summaries, ``ls``, ``compare``,
    reports): it did not fail, and its value is a finite number. A diverged trial's
    ``-Infinity`` or ``NaN`` is no result, and a failed trial's last value is not trusted.
    ``status`` is a :class:`TrialStatus` or its value."""
    return status != TrialStatus.ERROR.value and is_number(value) and math.isfinite(value)


@dataclass(frozen=True)
class Kept:
    """One of a trial's checkpoints on disk (see :mod:`raytuner.execution.retention`).

    Attributes:
        name: its folder relative to the experiment folder (``<trial folder>/checkpoint_NNNNNN``).
        iteration: the ``training_iteration`` of the report it came with.
        value: the metric checkpoints are ranked by, in that report (None: missing or NaN).
        time_total_s: the trial's ``time_total_s`` in that report (None where not recorded).
    """

    name: str
    iteration: int
    value: float | None
    time_total_s: float | None = None


@dataclass(slots=True)
class TrialRecord:
    """Everything recorded about one trial."""

    trial_id: str
    config: dict[str, Any]
    status: TrialStatus = TrialStatus.PENDING
    started_at: float | None = None
    ended_at: float | None = None
    iterations: int = 0
    time_total_s: float = 0.0
    last: dict[str, Any] = field(default_factory=dict)
    best: float | None = None
    best_iteration: int | None = None
    error: str | None = None
    num_failures: int = 0
    node_ip: str | None = None
    trial_dir: str | None = None
    resources: dict[str, float] = field(default_factory=dict)
    gpu_ids: str | None = None  # the GPUs the trial used, as CUDA_VISIBLE_DEVICES names them ("0", "0,1")
    early_stopped: bool = False
    checkpoints: list[Kept] = field(default_factory=list)  # kept on disk, oldest first
    checkpoint_best: Kept | None = None  # the best of them by the checkpoint metric

    def observe(self, metric: str, sign: float, metrics: Mapping[str, Any], iteration: int) -> bool:
        """Take one report into account; True if it improved this trial's best (NaN never does;
        an infinity in the better direction does, and leaves the trial out of rankings)."""
        self.last.update(metrics)
        value = metrics.get(metric)
        if not is_number(value) or math.isnan(value):
            return False
        if self.best is None or sign * value > sign * self.best:
            self.best = float(value)
            self.best_iteration = iteration
            return True
        return False


@dataclass
class Best:
    trial_id: str
    value: float
    iteration: int
    config: dict[str, Any]


KEEP_BEST = 10  # retired trials kept for the end-of-run summary (its top 10)


@dataclass(slots=True)
class Retired:
    """What is kept of the finished trials whose records were let go: how many of each status,
    the :data:`KEEP_BEST` best, and (several metrics) the retired trials on the Pareto front."""

    counts: dict[TrialStatus, int] = field(default_factory=lambda: dict.fromkeys(TrialStatus, 0))
    best: list[TrialRecord] = field(default_factory=list)
    front: list[TrialRecord] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class ExperimentBook:
    """The trial records of one run, and the best so far (of ``metric``, the primary objective).

    ``trials`` holds every trial not yet retired: pending, running, failed, and finished ones the
    trials table does not hold yet. :meth:`counts`, :meth:`ranked`, :meth:`front` and :attr:`size`
    count the retired ones too.
    """

    metric: str
    sign: float
    trials: dict[str, TrialRecord] = field(default_factory=dict)
    best: Best | None = None
    reports: int = 0
    pending: int = 0
    abort: Exception | None = None
    # (metric, mode) of every objective when the spec has several metrics; empty otherwise
    objectives: tuple[tuple[str, str], ...] = ()
    retired: Retired = field(default_factory=Retired)

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def size(self) -> int:
        """Trials of this run so far, retired ones included."""
        return len(self.trials) + self.retired.total

    def front(self) -> list[TrialRecord]:
        """The completed trials on the Pareto front (see :mod:`raytuner.results.pareto`), best first by the first objective."""
        chosen = self._front_of([*self.retired.front, *self.trials.values()])
        first, mode = self.objectives[0]
        return sorted(chosen, key=lambda r: (-1.0 if mode == "max" else 1.0) * float(r.last[first]))

    def _front_of(self, records: list[TrialRecord]) -> list[TrialRecord]:
        from raytuner.results.pareto import front_of_rows

        rows = [{"status": r.status.value, **{f"last/{m}": r.last.get(m) for m, _ in self.objectives}} for r in records]
        return [r for r, on in zip(records, front_of_rows(rows, self.objectives), strict=True) if on]

    def ranked(self) -> list[TrialRecord]:
        """The :func:`rankable` trials best first: of every held one and the retired
        :data:`KEEP_BEST` best, so at least the first :data:`KEEP_BEST` are the run's best."""
        return self._ranked([*self.retired.best, *self.trials.values()])

    def _ranked(self, records: Iterable[TrialRecord]) -> list[TrialRecord]:
        sign = self.sign
        return sorted((r for r in records if rankable(r.status, r.best)), key=lambda r: -sign * (r.best or 0.0))

    def counts(self) -> dict[TrialStatus, int]:
        out = dict(self.retired.counts)
        for record in self.trials.values():
            out[record.status] += 1
        return out

    def retire(self) -> None:
        """Let go of the finished trials' records (call once the trials table holds them).

        Failed trials stay: ``resume --retry-errored`` starts them again.
        """
        going = [r for r in self.trials.values() if r.status.finished and r.status is not TrialStatus.ERROR]
        if not going:
            return
        retired = self.retired
        for record in going:
            del self.trials[record.trial_id]
            retired.counts[record.status] += 1
        retired.best = self._ranked([*retired.best, *going])[:KEEP_BEST]
        if self.multi_objective:
            retired.front = self._front_of([*retired.front, *going])

    def consider(self, record: TrialRecord) -> bool:
        """Update the overall best from ``record``; True if it is the new best."""
        if record.best is None or not rankable(record.status, record.best):
            self.withdraw(record)
            return False
        if self.best is None or self.sign * record.best > self.sign * self.best.value:
            self.best = Best(record.trial_id, record.best, record.best_iteration or 0, record.config)
            return True
        return False

    def withdraw(self, record: TrialRecord) -> None:
        """``record`` left the rankings (it failed, or diverged to an infinity): if it was the
        best, the best is the next :func:`rankable` trial (or none)."""
        if self.best is None or self.best.trial_id != record.trial_id:
            return
        top = self.ranked()
        self.best = None
        if top:
            self.consider(top[0])

    def reported(self) -> bool:
        """Whether a trial reported the spec's metrics (each of them, with several). A run's
        folder is removed for a metric typo only while none has: the inline backend's other
        trials can report in the moment before an abort stops them, and a resumed run's have."""
        wanted = [name for name, _ in self.objectives] or [self.metric]
        return self.best is not None or any(all(name in r.last for name in wanted) for r in self.trials.values())

    @property
    def failed(self) -> int:
        """Trials that ended in error (after their retries), retired or held."""
        return self.counts()[TrialStatus.ERROR]


def read_records(path: Path) -> dict[str, TrialRecord]:
    """The trial records a trials table (``trials.parquet``) holds, by trial id, in its order."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    last_columns = [name for name in table.column_names if name.startswith("last/")]
    records = {}
    for row in table.to_pylist():
        record = TrialRecord(
            trial_id=row["trial_id"],
            config=json.loads(row["config_json"]),
            status=TrialStatus(row["status"]),
            iterations=int(row["iterations"] or 0),
            time_total_s=float(row["time_total_s"] or 0.0),
            best=row["metric_best"],
            best_iteration=row["metric_best_iteration"],
            error=row["error"],
            num_failures=int(row["num_failures"] or 0),
            node_ip=row["node_ip"],
            gpu_ids=row.get("gpu_ids"),
            trial_dir=row["trial_dir"],
            last={name[len("last/") :]: row[name] for name in last_columns if row[name] is not None},
        )
        best, last = _kept(row, "checkpoint_best"), _kept(row, "checkpoint_last")
        record.checkpoint_best = best
        older = [best] if best is not None and (last is None or best.name != last.name) else []
        record.checkpoints = older + ([last] if last is not None else [])
        record.started_at = row["started_at"].timestamp() if row["started_at"] else None
        record.ended_at = row["ended_at"].timestamp() if row["ended_at"] else None
        records[record.trial_id] = record
    return records


def _kept(row: Mapping[str, Any], prefix: str) -> Kept | None:
    """The checkpoint a trials table row records under ``prefix`` (tables older than these columns have none)."""
    name = row.get(prefix)
    if not name:
        return None
    return Kept(name, int(row.get(f"{prefix}_iteration") or 0), row.get(f"{prefix}_value"))
