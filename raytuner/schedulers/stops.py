"""Ray's early-stopping schedulers, noting which trials they stop.

A trial Ray ends may have finished by itself or been ended by its scheduler; only the
scheduler knows which. A scheduler ends a trial two ways: a STOP decision on the trial's own
result (ASHA, the median rule), or ``tune_controller.stop_trial`` on another trial (HyperBand
halting the paused losers of a bracket). These subclasses note both, so the trials table can
say "stopped" (early) rather than "completed".
"""

from __future__ import annotations

from typing import Any

from ray.tune.schedulers import ASHAScheduler, HyperBandScheduler, MedianStoppingRule, TrialScheduler


class _NotingController:
    """Ray's TuneController as a scheduler sees it, noting each trial the scheduler stops itself."""

    def __init__(self, controller: Any, noted: set[str]) -> None:
        self._controller = controller
        self._noted = noted

    def stop_trial(self, trial: Any) -> None:
        self._noted.add(trial.trial_id)
        self._controller.stop_trial(trial)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._controller, name)


class _NotesStops:
    early_stopped: set[str]

    def _noting(self, tune_controller: Any) -> _NotingController:
        return _NotingController(tune_controller, self.early_stopped)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        decision: str = super().on_trial_result(self._noting(tune_controller), trial, result)  # type: ignore[misc]
        if decision == TrialScheduler.STOP:
            self.early_stopped.add(trial.trial_id)
        return decision

    # HyperBand processes a bracket, and so stops its losers, from these too
    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:
        super().on_trial_complete(self._noting(tune_controller), trial, result)  # type: ignore[misc]

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        super().on_trial_remove(self._noting(tune_controller), trial)  # type: ignore[misc]

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        super().on_trial_error(self._noting(tune_controller), trial)  # type: ignore[misc]


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
