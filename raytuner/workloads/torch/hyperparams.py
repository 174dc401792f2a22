"""The tuned hyperparameters: one trial's ``config`` dict, parsed and checked.

A trial's config is the sampled ``space``. Every key is optional (a default applies) and an
unknown key is an error, so a typo in the space never silently trains with a default.

=====================  ==========================================================  =========
key                    meaning                                                     default
=====================  ==========================================================  =========
lr                     base learning rate                                          per optimizer
batch_size             examples per training step                                  64
optimizer              a name (``adam``) or ``{name: sgd, momentum: 0.9, ...}``    adam
weight_decay           L2 penalty (decoupled for adamw)                            0
dropout                dropout probability after each hidden layer                 0
depth                  hidden layers (MLP) or convolution blocks (CNN)             2
hidden                 units per hidden layer (MLP) or in the dense layer (CNN)    128
channels               CNN: channels of the first block (doubled per block)        16
kernel_size            CNN: convolution kernel size (odd)                          3
activation             relu, gelu, tanh, silu, leaky_relu, elu, sigmoid, ...       relu
schedule               a name (``cosine``) or ``{name: step, step_size: 5, ...}``  constant
grad_clip              clip the gradient norm to this value                        none
layer_lr_decay         fine-tuning: group i from the head gets lr * decay**i       1
layer_lr_multipliers   fine-tuning: one lr factor per layer group, input first     none
=====================  ==========================================================  =========

Optimizer parameters (in the ``optimizer`` mapping): sgd ``momentum`` (0.9), ``nesterov``
(false), ``dampening`` (0); adam/adamw ``beta1`` (0.9), ``beta2`` (0.999) or ``betas``,
``eps`` (1e-8), ``amsgrad`` (false); rmsprop ``alpha`` (0.99), ``momentum`` (0), ``eps``
(1e-8), ``centered`` (false); adagrad ``eps`` (1e-10), ``lr_decay`` (0); adadelta ``rho``
(0.9), ``eps`` (1e-6). Schedule parameters: see :mod:`raytuner.workloads.torch.schedules`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from raytuner.spec.base import Model
from raytuner.spec.torch_options import OptimizerName


class ScheduleName(str, Enum):
    CONSTANT = "constant"
    EXPONENTIAL = "exponential"
    STEP = "step"
    PIECEWISE = "piecewise"
    POLYNOMIAL = "polynomial"
    COSINE = "cosine"
    PLATEAU = "plateau"


class ActivationName(str, Enum):
    RELU = "relu"
    GELU = "gelu"
    TANH = "tanh"
    SILU = "silu"
    LEAKY_RELU = "leaky_relu"
    ELU = "elu"
    SELU = "selu"
    SIGMOID = "sigmoid"
    MISH = "mish"


DEFAULT_LR: dict[OptimizerName, float] = {
    OptimizerName.SGD: 1e-2,
    OptimizerName.ADAM: 1e-3,
    OptimizerName.ADAMW: 1e-3,
    OptimizerName.RMSPROP: 1e-3,
    OptimizerName.ADAGRAD: 1e-2,
    OptimizerName.ADADELTA: 1.0,
}


# ---------------------------------------------------------------------------- optimizers


class SgdConfig(Model):
    name: Literal[OptimizerName.SGD]
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = False
    dampening: float = Field(0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> SgdConfig:
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ValueError(
                f"nesterov needs momentum > 0 and dampening 0, found momentum={self.momentum:g}, "
                f"dampening={self.dampening:g}"
            )
        return self


class _AdamBase(Model):
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)
    eps: float = Field(1e-8, gt=0)
    amsgrad: bool = False

    @model_validator(mode="before")
    @classmethod
    def _split_betas(cls, value: Any) -> Any:
        if isinstance(value, Mapping) and "betas" in value:
            rest = {key: item for key, item in value.items() if key != "betas"}
            betas = value["betas"]
            if not isinstance(betas, list | tuple) or len(betas) != 2:
                raise ValueError(f"betas must be a list of two numbers, found {betas!r}")
            return {**rest, "beta1": betas[0], "beta2": betas[1]}
        return value


class AdamConfig(_AdamBase):
    name: Literal[OptimizerName.ADAM]


class AdamWConfig(_AdamBase):
    name: Literal[OptimizerName.ADAMW]


class RmspropConfig(Model):
    name: Literal[OptimizerName.RMSPROP]
    alpha: float = Field(0.99, ge=0, lt=1)
    momentum: float = Field(0.0, ge=0, lt=1)
    eps: float = Field(1e-8, gt=0)
    centered: bool = False


class AdagradConfig(Model):
    name: Literal[OptimizerName.ADAGRAD]
    eps: float = Field(1e-10, gt=0)
    lr_decay: float = Field(0.0, ge=0)


class AdadeltaConfig(Model):
    name: Literal[OptimizerName.ADADELTA]
    rho: float = Field(0.9, ge=0, le=1)
    eps: float = Field(1e-6, gt=0)


OptimizerConfig = Annotated[
    SgdConfig | AdamConfig | AdamWConfig | RmspropConfig | AdagradConfig | AdadeltaConfig,
    Field(discriminator="name"),
]


# ---------------------------------------------------------------------------- schedules


class _ScheduleBase(Model):
    warmup_epochs: int = Field(0, ge=0, description="linear warmup over the first epochs")


class ConstantSchedule(_ScheduleBase):
    name: Literal[ScheduleName.CONSTANT]


class ExponentialSchedule(_ScheduleBase):
    name: Literal[ScheduleName.EXPONENTIAL]
    gamma: float = Field(0.95, gt=0, le=1)


class StepSchedule(_ScheduleBase):
    name: Literal[ScheduleName.STEP]
    step_size: int = Field(10, ge=1)
    gamma: float = Field(0.1, gt=0, le=1)


class PiecewiseSchedule(_ScheduleBase):
    name: Literal[ScheduleName.PIECEWISE]
    milestones: list[int] = Field(min_length=1)
    gamma: float = Field(0.1, gt=0, le=1)

    @field_validator("milestones")
    @classmethod
    def _increasing(cls, value: list[int]) -> list[int]:
        if any(b <= a for a, b in zip(value, value[1:], strict=False)) or value[0] < 1:
            raise ValueError(f"milestones must be increasing epochs >= 1, found {value}")
        return value


class PolynomialSchedule(_ScheduleBase):
    name: Literal[ScheduleName.POLYNOMIAL]
    power: float = Field(1.0, gt=0)
    end_factor: float = Field(0.0, ge=0, le=1)


class CosineSchedule(_ScheduleBase):
    name: Literal[ScheduleName.COSINE]
    min_factor: float = Field(0.0, ge=0, le=1)


class PlateauSchedule(_ScheduleBase):
    name: Literal[ScheduleName.PLATEAU]
    factor: float = Field(0.5, gt=0, lt=1)
    patience: int = Field(5, ge=0)
    threshold: float = Field(1e-4, ge=0, description="relative improvement of val_loss that counts")
    min_factor: float = Field(1 / 1024, gt=0, le=1, description="stop the trial once lr falls below this")


ScheduleConfig = Annotated[
    ConstantSchedule
    | ExponentialSchedule
    | StepSchedule
    | PiecewiseSchedule
    | PolynomialSchedule
    | CosineSchedule
    | PlateauSchedule,
    Field(discriminator="name"),
]


# ---------------------------------------------------------------------------- the config


def _named(value: Any) -> Any:
    """``adam`` is short for ``{name: adam}``."""
    return {"name": value} if isinstance(value, str) else value


class Hyperparameters(Model):
    """One trial's tuned hyperparameters (the module docstring lists every key)."""

    lr: float | None = Field(None, gt=0)
    batch_size: int = Field(64, ge=1)
    optimizer: OptimizerConfig = Field(default_factory=lambda: AdamConfig.model_validate({"name": "adam"}))
    weight_decay: float = Field(0.0, ge=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    depth: int = Field(2, ge=1, le=64)
    hidden: int = Field(128, ge=1)
    channels: int = Field(16, ge=1)
    kernel_size: int = Field(3, ge=1)
    activation: ActivationName = ActivationName.RELU
    schedule: ScheduleConfig = Field(default_factory=lambda: ConstantSchedule.model_validate({"name": "constant"}))
    grad_clip: float | None = Field(None, gt=0)
    layer_lr_decay: float = Field(1.0, gt=0, le=1)
    layer_lr_multipliers: list[float] | None = Field(None, min_length=1)

    @field_validator("optimizer", "schedule", mode="before")
    @classmethod
    def _accept_name(cls, value: Any) -> Any:
        return _named(value)

    @field_validator("kernel_size")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"kernel_size must be odd, found {value}")
        return value

    @field_validator("layer_lr_multipliers")
    @classmethod
    def _non_negative(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and min(value) < 0:
            raise ValueError(f"layer_lr_multipliers must be >= 0, found {value}")
        return value

    @property
    def base_lr(self) -> float:
        """The configured learning rate, or the optimizer's usual default."""
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer.name]


class ConfigError(ValueError):
    """A trial's config does not fit the workload; the message names every bad key."""


def parse_config(config: Mapping[str, Any]) -> Hyperparameters:
    """Parse a trial's config into typed hyperparameters.

    Args:
        config: The sampled space (nested plain values; numpy scalars are accepted).

    Returns:
        The hyperparameters, with defaults for absent keys.

    Raises:
        ConfigError: A key is unknown or a value is out of range.
    """
    try:
        return Hyperparameters.model_validate(_plain(config))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'config'}: {error['msg']}" for error in exc.errors()
        )
        raise ConfigError(f"invalid trial config for a built-in torch workload: {problems}") from exc


def _plain(value: Any) -> Any:
    """Turn numpy scalars (from HyperOpt or Ray's samplers) into Python values."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if not isinstance(value, bool | int | float | str) and hasattr(value, "item"):
        return value.item()
    return value
