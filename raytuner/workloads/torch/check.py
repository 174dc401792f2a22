"""Validation-time checks of a built-in PyTorch workload against the rest of the spec.

Run by ``raytuner validate`` and before every run, without torch: the dataset loads and
splits, the spec's metric is one the workload reports, and configurations drawn from the
space (and the points to evaluate) are ones the workload understands.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from raytuner.errors import Location, SpecError
from raytuner.space.model import Path
from raytuner.space.points import complete_point
from raytuner.space.sample import sample
from raytuner.spec.torch_options import TorchTrainableBase
from raytuner.workloads.torch.datasets import check_dataset
from raytuner.workloads.torch.hyperparams import ConfigError, parse_config

if TYPE_CHECKING:
    from raytuner.spec.loader import Experiment

SAMPLES_CHECKED = 32


def reported_metrics(options: TorchTrainableBase) -> tuple[str, ...]:
    """Every key the workload reports each epoch."""
    common = ("train_loss", "val_loss", "epoch", "lr", "num_params")
    if options.is_classifier:
        return (*common, "train_accuracy", "val_accuracy")
    return (*common, "val_rmse", "val_mae")


def check_torch(options: TorchTrainableBase, experiment: Experiment, locate: Callable[[Path], Location]) -> None:
    """Raise a SpecError (with the spec's file and line) for anything this workload cannot run."""
    metrics = reported_metrics(options)
    for i, objective in enumerate(experiment.spec.objectives):
        if objective.metric not in metrics:
            raise SpecError(
                f"{getattr(options, 'builtin', 'this workload')} reports {', '.join(metrics)}; "
                f"found metric '{objective.metric}'",
                locate(("metric", i) if experiment.spec.multi_objective else ("metric",)),
            )
    try:
        check_dataset(options, experiment.base_dir)  # type: ignore[arg-type]
    except SpecError as exc:
        path = tuple(_parts(exc.location.path or "trainable"))
        raise SpecError(exc.message, locate(path)) from exc
    rng = np.random.default_rng(0)
    for i, point in enumerate(experiment.spec.search.points_to_evaluate):
        _check_config(complete_point(experiment.space, point, rng), locate(("search", "points_to_evaluate", i)))
    for _ in range(SAMPLES_CHECKED):
        _check_config(sample(experiment.space.root, rng), locate(("space",)))


def _check_config(config: dict[str, object], where: Location) -> None:
    try:
        parse_config(config)
    except ConfigError as exc:
        text = re.sub(r"<\w+\.\w+: ('[^']*')>", r"\1", str(exc))  # enum reprs -> their values
        raise SpecError(f"the space gives configurations the workload cannot use: {text}", where) from exc


def _parts(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for piece in path.replace("]", "").replace("[", ".").split("."):
        if piece:
            parts.append(int(piece) if piece.isdigit() else piece)
    return parts
