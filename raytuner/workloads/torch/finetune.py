"""Fine-tuning: start from saved weights, freeze the first layer groups, scale group lrs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from raytuner.workloads.torch.hyperparams import ConfigError, Hyperparameters
from raytuner.workloads.torch.networks import LayeredNetwork
from raytuner.workloads.torch.trainable import STATE_FILE


def resolve(path: str, base_dir: str | Path) -> Path:
    """A path as the spec wrote it, relative to the spec's folder unless absolute."""
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else Path(base_dir) / candidate


def read_weights(path: Path) -> Mapping[str, torch.Tensor]:
    """Read network weights from a checkpoint of this workload or a plain state_dict file.

    Args:
        path: A checkpoint folder (holding ``state.pt``), a ``state.pt`` file, or a file
            saved with ``torch.save(network.state_dict(), path)``.

    Returns:
        Parameter names to tensors (fold 0's network for a k-fold checkpoint).

    Raises:
        ConfigError: The file is missing or holds no weights.
    """
    file = path / STATE_FILE if path.is_dir() else path
    if not file.is_file():
        raise ConfigError(f"init_from: no checkpoint file at {file}")
    saved: Any = torch.load(file, map_location="cpu", weights_only=True)
    if isinstance(saved, dict) and "folds" in saved:
        saved = saved["folds"][0]["model"]
    elif isinstance(saved, dict) and "model" in saved:
        saved = saved["model"]
    if not isinstance(saved, dict) or not all(isinstance(value, torch.Tensor) for value in saved.values()):
        raise ConfigError(f"init_from: {file} holds no network weights")
    return saved


def load_matching(network: nn.Module, weights: Mapping[str, torch.Tensor]) -> list[str]:
    """Copy the weights whose name and shape match; a new head keeps its fresh weights.

    Returns:
        The names of the parameters that were loaded.

    Raises:
        ConfigError: Nothing matched (a different architecture).
    """
    own = network.state_dict()
    matching = {name: value for name, value in weights.items() if name in own and own[name].shape == value.shape}
    if not matching:
        raise ConfigError(
            "init_from: no parameter of the saved network matches this one (same depth, hidden, "
            "channels and kernel_size are needed)"
        )
    network.load_state_dict(matching, strict=False)
    return sorted(matching)


def freeze(network: LayeredNetwork, layers: int) -> None:
    """Stop gradients for the first ``layers`` layer groups."""
    if layers >= len(network.groups):
        raise ConfigError(
            f"freeze_layers={layers} leaves nothing to train: this network has {len(network.groups)} layer groups"
        )
    for group in network.groups[:layers]:
        for parameter in group.parameters():
            parameter.requires_grad_(False)


def lr_multipliers(groups: int, hp: Hyperparameters) -> list[float]:
    """Each layer group's lr factor, input side first.

    ``layer_lr_multipliers`` gives them outright (one per group); otherwise group ``i``
    gets ``layer_lr_decay ** (groups - 1 - i)``, so the head trains at the base lr.
    """
    if hp.layer_lr_multipliers is not None:
        if len(hp.layer_lr_multipliers) != groups:
            raise ConfigError(
                f"layer_lr_multipliers has {len(hp.layer_lr_multipliers)} values; this network has "
                f"{groups} layer groups (MLP: depth + 1, CNN: depth + 2; input side first, the head last)"
            )
        return list(hp.layer_lr_multipliers)
    return [hp.layer_lr_decay ** (groups - 1 - index) for index in range(groups)]
