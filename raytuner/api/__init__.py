"""raytuner's Python API: run, validate and open experiments (docs/python-api.md).

Every name is re-exported by :mod:`raytuner` itself (``raytuner.run``, ``raytuner.open``...).
"""

from __future__ import annotations

from raytuner.api.experiment import Experiment, Trial, open
from raytuner.api.running import Overrides, Plan, SpecSource, run, validate
from raytuner.results.checkpoints import CheckpointInfo

__all__ = ["CheckpointInfo", "Experiment", "Overrides", "Plan", "SpecSource", "Trial", "open", "run", "validate"]
