"""Optimizers: a registry from :class:`OptimizerName` to a torch class and its settings.

The settings (momentum, betas, eps, weight decay...) are kept apart from construction so a
restored optimizer can take a new trial's values (PBT's explore step) without losing its
state: :func:`apply_settings` writes them into every parameter group.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch  # noqa: TID253 (imported only inside trials, never by the CLI)

from raytuner.spec.torch_options import OptimizerName
from raytuner.workloads.torch.hyperparams import (
    AdadeltaConfig,
    AdagradConfig,
    AdamConfig,
    AdamWConfig,
    Hyperparameters,
    RmspropConfig,
    SgdConfig,
)


@dataclass(frozen=True)
class OptimizerEntry:
    """A torch optimizer class and the group settings it takes from a config."""

    cls: Callable[..., torch.optim.Optimizer]
    settings: Callable[[Any], dict[str, Any]]


def _sgd(config: SgdConfig) -> dict[str, Any]:
    return {"momentum": config.momentum, "nesterov": config.nesterov, "dampening": config.dampening}


def _adam(config: AdamConfig | AdamWConfig) -> dict[str, Any]:
    return {"betas": (config.beta1, config.beta2), "eps": config.eps, "amsgrad": config.amsgrad}


def _rmsprop(config: RmspropConfig) -> dict[str, Any]:
    return {"alpha": config.alpha, "momentum": config.momentum, "eps": config.eps, "centered": config.centered}


def _adagrad(config: AdagradConfig) -> dict[str, Any]:
    return {"eps": config.eps, "lr_decay": config.lr_decay}


def _adadelta(config: AdadeltaConfig) -> dict[str, Any]:
    return {"rho": config.rho, "eps": config.eps}


OPTIMIZERS: dict[OptimizerName, OptimizerEntry] = {
    OptimizerName.SGD: OptimizerEntry(torch.optim.SGD, _sgd),
    OptimizerName.ADAM: OptimizerEntry(torch.optim.Adam, _adam),
    OptimizerName.ADAMW: OptimizerEntry(torch.optim.AdamW, _adam),
    OptimizerName.RMSPROP: OptimizerEntry(torch.optim.RMSprop, _rmsprop),
    OptimizerName.ADAGRAD: OptimizerEntry(torch.optim.Adagrad, _adagrad),
    OptimizerName.ADADELTA: OptimizerEntry(torch.optim.Adadelta, _adadelta),
}


def group_settings(hp: Hyperparameters) -> dict[str, Any]:
    """Every parameter-group setting a config fixes, except the lr (set each epoch)."""
    entry = OPTIMIZERS[hp.optimizer.name]
    return {**entry.settings(hp.optimizer), "weight_decay": hp.weight_decay}


def build_optimizer(groups: Iterable[dict[str, Any]], hp: Hyperparameters) -> torch.optim.Optimizer:
    """Build the optimizer a config names.

    Args:
        groups: Parameter groups, each ``{"params": [...], "lr_mult": float}``; the lr
            multiplier stays in the group (and in its state_dict) for :func:`set_lr`.
        hp: The trial's hyperparameters.

    Returns:
        The optimizer, every group at lr ``hp.base_lr * lr_mult``.
    """
    entry = OPTIMIZERS[hp.optimizer.name]
    settings = group_settings(hp)
    prepared = [{**group, "lr": hp.base_lr * group["lr_mult"], **settings} for group in groups]
    return entry.cls(prepared, lr=hp.base_lr, **settings)


def apply_settings(optimizer: torch.optim.Optimizer, hp: Hyperparameters, multipliers: list[float]) -> None:
    """Write a config's settings and lr multipliers into a (restored) optimizer's groups."""
    settings = group_settings(hp)
    for group, multiplier in zip(optimizer.param_groups, multipliers, strict=True):
        group.update(settings)
        group["lr_mult"] = multiplier


def set_lr(optimizer: torch.optim.Optimizer, base_lr: float) -> None:
    """Set every group's lr to ``base_lr`` times the group's multiplier."""
    for group in optimizer.param_groups:
        group["lr"] = base_lr * group["lr_mult"]
