"""Trainables: built-in workloads by name, and user code by ``module:name``.

``check_trainable`` runs at validation time (no Ray started); ``build_trainable`` gives the
execution layer what to hand to ``ray.tune.Tuner``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from raytuner.errors import Location
from raytuner.space.model import Path

if TYPE_CHECKING:
    from raytuner.spec.loader import Experiment

Locate = Callable[[Path], Location]


@dataclass(frozen=True)
class TrainableBuild:
    """What the Tuner runs: a function or Trainable class, and whether actors can be reused."""

    trainable: Any
    reusable: bool
    label: str


def check_trainable(experiment: Experiment, locate: Locate) -> None:
    """Raise a SpecError if the trainable cannot run over the experiment's space."""
    from raytuner.spec.command_options import CommandTrainable
    from raytuner.spec.models import AnalyticTrainable, FunctionTrainable
    from raytuner.spec.torch_options import TorchTrainableBase

    trainable = experiment.spec.trainable
    if isinstance(trainable, AnalyticTrainable):
        from raytuner.workloads.analytic import check_space

        check_space(trainable, experiment.space, locate)
    elif isinstance(trainable, TorchTrainableBase):
        from raytuner.workloads.torch.check import check_torch

        check_torch(trainable, experiment, locate)
    elif isinstance(trainable, CommandTrainable):
        from raytuner.workloads.command import check

        check(trainable, experiment, locate)
    elif isinstance(trainable, FunctionTrainable):
        from raytuner.workloads.function import resolve

        resolve(trainable.function, experiment.base_dir, locate(("trainable", "function")))


def reported_metrics(trainable: Any) -> tuple[str, ...] | None:
    """The metrics a built-in workload reports; None for user code (not known before it runs)."""
    from raytuner.spec.models import AnalyticTrainable
    from raytuner.spec.torch_options import TorchTrainableBase

    if isinstance(trainable, AnalyticTrainable):
        from raytuner.workloads.analytic import MULTI_OBJECTIVES

        return ("f1", "f2") if trainable.objective in MULTI_OBJECTIVES else ("loss", "objective")
    if isinstance(trainable, TorchTrainableBase):
        from raytuner.workloads.torch.check import reported_metrics as torch_metrics

        return torch_metrics(trainable)
    return None


def build_trainable(experiment: Experiment) -> TrainableBuild:
    """The trainable for ``ray.tune.Tuner`` (imports Ray and the workload's libraries)."""
    from raytuner.spec.command_options import CommandTrainable
    from raytuner.spec.models import AnalyticTrainable
    from raytuner.spec.torch_options import TorchTrainableBase

    trainable = experiment.spec.trainable
    every = experiment.spec.checkpoint.every
    if isinstance(trainable, AnalyticTrainable):
        from raytuner.workloads.analytic import make_trainable

        return TrainableBuild(make_trainable(trainable, every), True, f"analytic-{trainable.objective.value}")
    if isinstance(trainable, TorchTrainableBase):
        from raytuner.workloads.torch.trainable import make_trainable as make_torch

        torch_fn = make_torch(trainable, every, base_dir=experiment.base_dir)
        return TrainableBuild(torch_fn, True, trainable.builtin)
    if isinstance(trainable, CommandTrainable):
        from raytuner.workloads.command import build as build_command

        return build_command(trainable, experiment)
    from raytuner.workloads.function import build

    return build(trainable.function, experiment.base_dir)
