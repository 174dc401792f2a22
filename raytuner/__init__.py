"""raytuner: hyperparameter tuning for deep learning on Ray Tune, from one YAML spec.

From Python (docs/python-api.md)::

    import raytuner

    experiment = raytuner.run({"name": "quad", "trainable": {"function": train}, ...})
    experiment.trials().to_pandas()
    experiment.best()[0].config

``import raytuner`` loads no Ray, pyarrow or torch: the API's names are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from raytuner.errors import (
    ExperimentError,
    JobError,
    JobRefusedError,
    Location,
    MetricNotReportedError,
    RaytunerError,
    SpecError,
    UsageError,
)

if TYPE_CHECKING:
    from raytuner.api import (
        CheckpointInfo,
        Experiment,
        LrFind,
        Overrides,
        Plan,
        Ranking,
        SpecSource,
        Trial,
        TrialView,
        experiments,
        lr_find,
        open,
        predict,
        run,
        validate,
    )
    from raytuner.spec.models import Spec

__version__ = "0.1.0"

__all__ = [
    "CheckpointInfo",
    "Experiment",
    "LrFind",
    "ExperimentError",
    "JobError",
    "JobRefusedError",
    "Location",
    "MetricNotReportedError",
    "Overrides",
    "Plan",
    "Ranking",
    "RaytunerError",
    "Spec",
    "SpecError",
    "SpecSource",
    "Trial",
    "TrialView",
    "UsageError",
    "__version__",
    "experiments",
    "lr_find",
    "open",
    "predict",
    "run",
    "validate",
]

_LAZY = {
    "CheckpointInfo": "raytuner.api",
    "Experiment": "raytuner.api",
    "LrFind": "raytuner.api",
    "Overrides": "raytuner.api",
    "Plan": "raytuner.api",
    "Ranking": "raytuner.api",
    "SpecSource": "raytuner.api",
    "Trial": "raytuner.api",
    "TrialView": "raytuner.api",
    "experiments": "raytuner.api",
    "lr_find": "raytuner.api",
    "open": "raytuner.api",
    "predict": "raytuner.api",
    "run": "raytuner.api",
    "validate": "raytuner.api",
    "Spec": "raytuner.spec.models",
}


def __getattr__(name: str) -> Any:
    """The API's names, imported when first used (``raytuner --help`` stays fast)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'raytuner' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
