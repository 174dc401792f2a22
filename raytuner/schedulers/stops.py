"""Ray's early-stopping schedulers, noting which trials they stop.

A result Ray marks ``done`` may come from a trainable that finished by itself or from a
scheduler's STOP decision; only the scheduler knows which. These subclasses remember their
STOP decisions so the trials table can say "stopped" (early) rather than "completed".
"""

from __future__ import annotations

from typing import Any

from ray.tune.schedulers import ASHAScheduler, HyperBandScheduler, MedianStoppingRule, TrialScheduler


class _NotesStops:
    early_stopped: set[str]

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        decision: str = super().on_trial_result(tune_controller, trial, result)  # type: ignore[misc]
        if decision == TrialScheduler.STOP:
            self.early_stopped.add(trial.trial_id)
        return decision


class NotingASHA(_NotesStops, ASHAScheduler):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.early_stopped = set()


class NotingHyperBand(_NotesStops, HyperBandScheduler):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.early_stopped = set()


class NotingMedian(_NotesStops, MedianStoppingRule):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.early_stopped = set()
