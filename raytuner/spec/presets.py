"""Recommended search spaces, in the spec's space language, one per optimizer.

The ranges are the usual starting points: SGD likes a larger lr (1e-2..1e-1) with momentum,
the adaptive optimizers a smaller one (1e-3..1e-2 for Adam). Weight decay 0..1e-4, dropout
0..0.5 and batch sizes 16..1024 (powers of two) fit most small and medium workloads.
"""

from __future__ import annotations

import copy
from typing import Any

from raytuner.spec.torch_options import OptimizerName

LR_RANGES: dict[OptimizerName, tuple[float, float]] = {
    OptimizerName.SGD: (1e-2, 1e-1),
    OptimizerName.ADAM: (1e-3, 1e-2),
    OptimizerName.ADAMW: (1e-3, 1e-2),
    OptimizerName.RMSPROP: (1e-4, 1e-2),
    OptimizerName.ADAGRAD: (1e-3, 1e-1),
    OptimizerName.ADADELTA: (1e-1, 1.0),
}

OPTIMIZER_SPACES: dict[OptimizerName, dict[str, Any]] = {
    OptimizerName.SGD: {"name": "sgd", "momentum": {"uniform": [0.8, 0.99]}, "nesterov": {"choice": [False, True]}},
    OptimizerName.ADAM: {"name": "adam", "beta1": {"uniform": [0.85, 0.95]}},
    OptimizerName.ADAMW: {"name": "adamw", "beta1": {"uniform": [0.85, 0.95]}},
    OptimizerName.RMSPROP: {"name": "rmsprop", "alpha": {"uniform": [0.9, 0.999]}},
    OptimizerName.ADAGRAD: {"name": "adagrad"},
    OptimizerName.ADADELTA: {"name": "adadelta", "rho": {"uniform": [0.85, 0.95]}},
}

BATCH_SIZES = [16, 32, 64, 128, 256, 512, 1024]


def recommended_space(optimizer_name: str | OptimizerName) -> dict[str, Any]:
    """A preset search space for one optimizer, ready to be a spec's ``space``.

    Args:
        optimizer_name: One of sgd, adam, adamw, rmsprop, adagrad, adadelta.

    Returns:
        A fresh mapping (the caller may change it): lr, optimizer (with its own
        parameters), weight_decay, dropout and batch_size.

    Raises:
        ValueError: Unknown optimizer (the message lists the known ones).
    """
    try:
        name = OptimizerName(optimizer_name)
    except ValueError as exc:
        known = ", ".join(member.value for member in OptimizerName)
        raise ValueError(f"unknown optimizer {optimizer_name!r}; expected one of {known}") from exc
    low, high = LR_RANGES[name]
    return {
        "lr": {"loguniform": [low, high]},
        "optimizer": copy.deepcopy(OPTIMIZER_SPACES[name]),
        "weight_decay": {"uniform": [0.0, 1e-4]},
        "dropout": {"uniform": [0.0, 0.5]},
        "batch_size": {"choice": list(BATCH_SIZES)},
    }
