"""raytuner's Python API: run, validate and open experiments (docs/python-api.md).

Every name is re-exported by :mod:`raytuner` itself (``raytuner.run``, ``raytuner.open``...).
"""

from __future__ import annotations

from raytuner.api.experiment import Experiment, experiments, open
from raytuner.api.final import predict
from raytuner.api.learning_rate import LrFind, lr_find
from raytuner.api.running import Overrides, Plan, SpecSource, run, validate
from raytuner.api.views import Ranking, Trial, TrialView
from raytuner.results.checkpoints import CheckpointInfo

__all__ = [
    "CheckpointInfo",
    "Experiment",
    "LrFind",
    "Overrides",
    "Plan",
    "Ranking",
    "SpecSource",
    "Trial",
    "TrialView",
    "experiments",
    "lr_find",
    "open",
    "predict",
    "run",
    "validate",
]
