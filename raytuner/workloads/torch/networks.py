"""Network architectures: an MLP and a small CNN, each a list of *layer groups*.

A layer group is the unit of fine-tuning: ``freeze_layers: K`` freezes the first K groups,
and ``layer_lr_multipliers`` / ``layer_lr_decay`` give each group its own learning rate.
MLP groups: each hidden layer (linear, activation, dropout), then the head. CNN groups: each
convolution block (conv, activation, 2x2 max-pool while the image is at least 2x2), the dense
layer (linear, activation, dropout), then the head.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from raytuner.workloads.torch.hyperparams import ActivationName, Hyperparameters
from raytuner.workloads.torch.random_stream import StreamDropout

ACTIVATIONS: dict[ActivationName, Callable[[], nn.Module]] = {
    ActivationName.RELU: nn.ReLU,
    ActivationName.GELU: nn.GELU,
    ActivationName.TANH: nn.Tanh,
    ActivationName.SILU: nn.SiLU,
    ActivationName.LEAKY_RELU: nn.LeakyReLU,
    ActivationName.ELU: nn.ELU,
    ActivationName.SELU: nn.SELU,
    ActivationName.SIGMOID: nn.Sigmoid,
    ActivationName.MISH: nn.Mish,
}

MAX_CHANNELS = 256


class LayeredNetwork(nn.Module):
    """Layer groups applied in order; CNNs reshape their flat input rows to images first."""

    def __init__(self, groups: Sequence[nn.Module], image_shape: tuple[int, int, int] | None = None) -> None:
        super().__init__()
        self.groups = nn.ModuleList(groups)
        self.image_shape = image_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.image_shape is not None:
            x = x.view(x.shape[0], *self.image_shape)
        for group in self.groups:
            x = group(x)
        return x


def build_mlp(in_features: int, out_features: int, hp: Hyperparameters) -> LayeredNetwork:
    """An MLP with ``hp.depth`` hidden layers of ``hp.hidden`` units.

    Args:
        in_features: Width of an input row.
        out_features: Classes (logits) or 1 (regression).
        hp: The trial's hyperparameters (depth, hidden, activation, dropout).

    Returns:
        The network, initialized from torch's current random state.
    """
    groups: list[nn.Module] = []
    width = in_features
    for _ in range(hp.depth):
        groups.append(nn.Sequential(nn.Linear(width, hp.hidden), ACTIVATIONS[hp.activation](), StreamDropout(hp.dropout)))
        width = hp.hidden
    groups.append(nn.Linear(width, out_features))
    return LayeredNetwork(groups)


def build_cnn(image_shape: tuple[int, int, int], out_features: int, hp: Hyperparameters) -> LayeredNetwork:
    """A CNN: ``hp.depth`` conv blocks (channels doubling), a dense layer, then the head.

    Args:
        image_shape: ``(channels, height, width)`` of one input.
        out_features: Number of classes.
        hp: The trial's hyperparameters (depth, channels, kernel_size, hidden, activation,
            dropout).

    Returns:
        The network, taking flat rows of ``prod(image_shape)`` values.
    """
    channels_in, height, width = image_shape
    groups: list[nn.Module] = []
    for block in range(hp.depth):
        channels = min(MAX_CHANNELS, hp.channels * 2**block)
        layers: list[nn.Module] = [
            nn.Conv2d(channels_in, channels, hp.kernel_size, padding=hp.kernel_size // 2),
            ACTIVATIONS[hp.activation](),
        ]
        if height >= 2 and width >= 2:
            layers.append(nn.MaxPool2d(2))
            height, width = height // 2, width // 2
        groups.append(nn.Sequential(*layers))
        channels_in = channels
    groups.append(
        nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels_in * height * width, hp.hidden),
            ACTIVATIONS[hp.activation](),
            StreamDropout(hp.dropout),
        )
    )
    groups.append(nn.Linear(hp.hidden, out_features))
    return LayeredNetwork(groups, image_shape)


def set_dropout(network: nn.Module, probability: float) -> None:
    """Set every dropout layer's probability (a restored trial may have a new one)."""
    for module in network.modules():
        if isinstance(module, nn.Dropout):
            module.p = probability
