"""The spec's ``stop`` conditions as one Ray Tune ``Stopper``, plus stopping everything on abort."""

from __future__ import annotations

from typing import Any

from ray.tune import Stopper

from raytuner.results.records import ExperimentBook, is_number
from raytuner.spec.models import StopSpec


class SpecStopper(Stopper):
    """Stops a trial at ``stop.iterations``, ``stop.time_s`` or a metric threshold."""

    def __init__(self, stop: StopSpec, book: ExperimentBook) -> None:
        self._stop = stop
        self._book = book
        self.stopped: set[str] = set()

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
        return self._book.abort is not None
