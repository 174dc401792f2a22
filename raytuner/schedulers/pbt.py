"""PBT and PB2 that also record every exploit/explore decision for the lineage table.

Ray's schedulers log decisions to text files; these subclasses hand each decision to
raytuner's bookkeeping as a :class:`Decision` (written to ``pbt_decisions.parquet``), and
keep Ray's own files as they are.
"""

from __future__ import annotations

import time
from typing import Any

from ray.tune.schedulers import PopulationBasedTraining

from raytuner.results.lineage import Decision


class _Recording:
    decisions: list[Decision]

    def _log_config_on_step(  # Ray's hook: called once per exploit, before the trial changes
        self, trial_state: Any, new_state: Any, trial: Any, trial_to_clone: Any, new_config: dict[str, Any]
    ) -> None:
        self.decisions.append(
            Decision(
                time=time.time(),
                trial_id=trial.trial_id,
                source_trial_id=trial_to_clone.trial_id,
                step=int(trial.last_result.get("training_iteration", 0)),
                source_step=int(trial_to_clone.last_result.get("training_iteration", 0)),
                old_config=dict(trial.config),
                source_config=dict(trial_to_clone.config),
                new_config=dict(new_config),
            )
        )
        super()._log_config_on_step(trial_state, new_state, trial, trial_to_clone, new_config)  # type: ignore[misc]

    def drain(self) -> list[Decision]:
        taken, self.decisions = self.decisions, []
        return taken


class RecordingPBT(_Recording, PopulationBasedTraining):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.decisions = []


def recording_pb2(**kwargs: Any) -> Any:
    """PB2 with decision recording (PB2 needs scikit-learn: the ``pb2`` extra)."""
    from ray.tune.schedulers.pb2 import PB2

    class RecordingPB2(_Recording, PB2):
        def __init__(self, **kw: Any) -> None:
            super().__init__(**kw)
            self.decisions = []

    return RecordingPB2(**kwargs)
