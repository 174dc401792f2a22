"""The spec's ``stop`` conditions as one Ray Tune ``Stopper``, plus stopping everything on abort
or once more trials failed than ``failure.max_failed_trials`` allows."""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import Any

from ray.tune import Stopper

from raytuner.results.records import ExperimentBook, is_number
from raytuner.spec.models import FailureSpec, StopSpec


@dataclass(frozen=True)
class FailureLimit:
    """``failure.max_failed_trials``: how many failed trials a run tolerates (Katib's
    ``maxFailedTrialCount``); a fraction counts of the experiment's planned trials."""

    setting: int | float | None
    total_trials: int
    key: str = "failure.max_failed_trials"

    @classmethod
    def of(cls, failure: FailureSpec, total_trials: int) -> FailureLimit:
        """The spec's limit; ``fail_fast`` is a limit of 0 (Ray's own fail_fast stops the trials,
        but its run returns as if it had ended: the limit is what says it failed)."""
        if failure.fail_fast:
            return cls(0, total_trials, "failure.fail_fast")
        return cls(failure.max_failed_trials, total_trials)

    @property
    def allowed(self) -> int | None:
        if self.setting is None or isinstance(self.setting, int):
            return self.setting
        return math.floor(self.setting * self.total_trials)

    def exceeded(self, failed: int) -> bool:
        allowed = self.allowed
        return allowed is not None and failed > allowed

    def reason(self, failed: int) -> str:
        """Why the run failed, for its status and the line the CLI prints."""
        of = "" if isinstance(self.setting, int) else f" ({self.setting:g} of {self.total_trials} trials)"
        return (
            f"{failed} trial{'s' if failed != 1 else ''} failed, more than {self.key} allows: "
            f"{self.allowed}{of}; the run was stopped"
        )


class SpecStopper(Stopper):
    """Stops a trial at ``stop.iterations``, ``stop.time_s`` or a metric threshold; every trial
    on abort or past the failure limit.

    Ray pickles its controller's stopper with the experiment state and a restored run takes it
    over the run config's; unpickled, a SpecStopper is the running one (the resumed run's, with
    its book), not the saved run's: that one's book would still count the failed trials that
    ``resume --retry-errored`` starts over.
    """

    def __init__(self, stop: StopSpec, book: ExperimentBook, limit: FailureLimit | None = None) -> None:
        self._stop = stop
        self._book = book
        self.limit = limit or FailureLimit(None, 0)
        self.stopped: set[str] = set()
        _LIVE[0] = weakref.ref(self)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return _live, (self._stop, self.limit)

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        if self._reached(result):
            self.stopped.add(trial_id)
            return True
        return False

    def _reached(self, result: dict[str, Any]) -> bool:
        stop = self._stop
        if stop.iterations is not None and result.get("training_iteration", 0) >= stop.iterations:
            return True
        if stop.time_s is not None and result.get("time_total_s", 0.0) >= stop.time_s:
            return True
        for name, threshold in stop.metrics.items():
            value = result.get(name)
            if not is_number(value):
                continue
            if threshold.at_least is not None and value >= threshold.at_least:
                return True
            if threshold.at_most is not None and value <= threshold.at_most:
                return True
        return False

    def stop_all(self) -> bool:
        return self._book.abort is not None or self.limit.exceeded(self._book.failed)


_LIVE: list[weakref.ref[SpecStopper] | None] = [None]  # the stopper of the run in progress in this process


def _live(stop: StopSpec, limit: FailureLimit) -> SpecStopper:
    """The unpickled stopper: the running one, or (no run in this process) one with an empty book."""
    running = _LIVE[0]() if _LIVE[0] is not None else None
    return running or SpecStopper(stop, ExperimentBook("", 1.0), limit)
