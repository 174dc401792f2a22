"""What a trial of the inline backend is made of: the trial Ray's parts see, and its session.

Ray Tune's schedulers, searchers and raytuner's Bookkeeper read a trial as Ray's ``Trial``;
:class:`InlineTrial` offers them what they read. ``ray.tune.report``, ``get_checkpoint`` and
``get_context`` reach Ray's session slot: :func:`routed_sessions` points it at a router that
finds the calling thread's :class:`TrialSession`.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

    from raytuner.execution.inline import InlineExecutor

NODE_IP = "127.0.0.1"
# A kept checkpoint: its folder, iteration, time_total_s, and the value it is ranked by (None: missing)
KeptFolder = tuple[str, int, float, float | None]

class TrialStopped(BaseException):
    """Raised in a trial's thread, from its report, when the trial must end there.

    A BaseException, so the trainable's own ``except Exception`` does not swallow it;
    ``finally`` blocks still run (a command trainable ends its program in one).
    """


@dataclass
class Resources:
    """What Ray's ``PlacementGroupFactory`` offers the Bookkeeper and ``get_trial_resources``."""

    required_resources: dict[str, float]

    def __repr__(self) -> str:
        return f"Resources({self.required_resources})"


@dataclass(eq=False)
class InlineTrial:
    """What Ray's schedulers, searchers and raytuner's Bookkeeper read of a ``Trial``.

    Compared and hashed by identity, like Ray's (the median rule keys its results by trial).
    Picklable: the unfinished ones are saved for resume.
    """

    trial_id: str
    config: dict[str, Any]
    trainable_name: str
    experiment_dir_name: str
    local_path: str
    placement_group_factory: Resources
    status: str = "PENDING"
    last_result: dict[str, Any] = field(default_factory=dict)
    num_failures: int = 0
    error_file: str | None = None
    checkpoints: list[KeptFolder] = field(default_factory=list)  # kept, in the order made
    checkpoints_made: int = 0
    stop_reason: str | None = None

    def __str__(self) -> str:
        return f"{self.trainable_name}_{self.trial_id}"

    @property
    def path(self) -> str:
        return self.local_path

    @property
    def latest_checkpoint(self) -> KeptFolder | None:
        return self.checkpoints[-1] if self.checkpoints else None


class _Controller:
    """The part of Ray's TuneController that its schedulers call back into."""

    def __init__(self, running: dict[str, InlineTrial]) -> None:
        self._running = running

    def get_trials(self) -> list[InlineTrial]:
        return list(self._running.values())

    def get_live_trials(self) -> list[InlineTrial]:
        return list(self._running.values())


# ---------------------------------------------------------------------- the trial's session


class TrialSession:
    """What ``ray.tune.report``, ``get_checkpoint`` and ``get_context`` find in a trial's thread."""

    world_rank = None  # a Tune session, not a Train worker's

    def __init__(self, executor: InlineExecutor, trial: InlineTrial) -> None:
        self._executor = executor
        self._trial = trial
        self.trial_id = trial.trial_id
        self.trial_name = str(trial)
        self.run_id = executor.run_id
        self.experiment_name = trial.experiment_dir_name
        self.trial_dir = trial.local_path
        self.trial_resources = trial.placement_group_factory
        self.loaded_checkpoint: Any = None
        latest = trial.latest_checkpoint
        if latest is not None:
            from ray.tune import Checkpoint

            self.loaded_checkpoint = Checkpoint.from_directory(latest[0])
        self._iteration = latest[1] if latest is not None else 0
        self._time_before = latest[2] if latest is not None else 0.0
        self._started = time.time()
        self._last = self._started
        self._since_restore = 0

    def report(self, metrics: dict[str, Any], *, checkpoint: Any = None) -> None:
        trial = self._trial
        executor = self._executor
        if executor.stopping is not None:
            trial.stop_reason = executor.stopping
            raise TrialStopped
        now = time.time()
        self._iteration += 1
        self._since_restore += 1
        result = dict(metrics)
        result.update(
            training_iteration=self._iteration,
            time_this_iter_s=now - self._last,
            time_total_s=self._time_before + (now - self._started),
            time_since_restore=now - self._started,
            iterations_since_restore=self._since_restore,
            timestamp=int(now),
            date=datetime.fromtimestamp(now).strftime("%Y-%m-%d_%H-%M-%S"),
            trial_id=trial.trial_id,
            done=False,
            pid=os.getpid(),
            hostname=executor.hostname,
            node_ip=NODE_IP,
            config=trial.config,
        )
        self._last = now
        stop = executor.take_result(trial, result)
        if checkpoint is not None:  # listed once its report is recorded: a resume never skips a report
            result["checkpoint_dir_name"] = executor.keep_checkpoint(trial, Path(checkpoint.path), result)
        if stop:
            raise TrialStopped


class _Router:
    """Ray's session slot (``ray.train._internal.session._session``) for every thread at once:
    each attribute is looked up on the session of the calling trial's thread."""

    def __init__(self) -> None:
        self.local = threading.local()

    def __getattr__(self, name: str) -> Any:
        session = getattr(self.local, "session", None)
        if session is None:
            raise RuntimeError(
                f"ray.tune session attribute {name!r} used outside a trial's thread (execution.backend: inline runs "
                "each trial in one thread; report from that thread)"
            )
        return getattr(session, name)


_ROUTER = _Router()


@contextlib.contextmanager
def routed_sessions() -> Iterator[None]:
    """Point Ray's session slot at the router for the run; restore what was there after."""
    from ray.train._internal import session as ray_session

    previous = ray_session._session
    ray_session._session = _ROUTER  # type: ignore[assignment]
    try:
        yield
    finally:
        ray_session._session = previous
