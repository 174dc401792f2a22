"""Learning-rate schedules: a factor of the base lr for each epoch, one class per shape.

A schedule never touches the optimizer: the training loop sets each parameter group's lr to
``base lr * group multiplier * schedule.factor(epoch)``. So a new base lr (PBT's explore
step) takes effect at once, and a schedule's state is a few numbers in a checkpoint.

Every schedule accepts ``warmup_epochs``: the factor ramps linearly, ``(e + 1) / (w + 1)``
for epoch ``e < w``, then the schedule runs over the remaining epochs.

==========  ===================================================  ============================
name        factor at epoch e (t = e - warmup)                   parameters (defaults)
==========  ===================================================  ============================
constant    1                                                    none
exponential gamma ** t                                           gamma (0.95)
step        gamma ** (t // step_size)                            step_size (10), gamma (0.1)
piecewise   gamma ** (milestones passed)                         milestones, gamma (0.1)
polynomial  end + (1 - end) * (1 - t / T) ** power               power (1), end_factor (0)
cosine      min + (1 - min) * (1 + cos(pi t / T)) / 2            min_factor (0)
plateau     times factor after patience epochs without a         factor (0.5), patience (5),
            better val_loss; the trial stops below min_factor    threshold (1e-4),
                                                                 min_factor (1/1024)
==========  ===================================================  ============================
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from typing import Any

from raytuner.workloads.torch.hyperparams import (
    ConstantSchedule,
    CosineSchedule,
    ExponentialSchedule,
    PiecewiseSchedule,
    PlateauSchedule,
    PolynomialSchedule,
    ScheduleConfig,
    ScheduleName,
    StepSchedule,
)


class Schedule:
    """A learning-rate factor per epoch (0-based); stateless unless it observes val_loss."""

    def __init__(self, warmup_epochs: int, total_epochs: int) -> None:
        self.warmup_epochs = warmup_epochs
        self.total_epochs = total_epochs

    def factor(self, epoch: int) -> float:
        """The factor of the base lr during ``epoch``, warmup included."""
        if epoch < self.warmup_epochs:
            return (epoch + 1) / (self.warmup_epochs + 1)
        return self.shape(epoch - self.warmup_epochs)

    def shape(self, t: int) -> float:
        """The factor ``t`` epochs after warmup."""
        return 1.0

    @property
    def horizon(self) -> int:
        """Epochs after warmup (at least one, so shapes never divide by zero)."""
        return max(1, self.total_epochs - self.warmup_epochs)

    def observe(self, epoch: int, val_loss: float) -> None:
        """Learn the validation loss at the end of ``epoch`` (only plateau cares)."""

    @property
    def exhausted(self) -> bool:
        """True once the schedule asks the trial to stop."""
        return False

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved."""


class _Exponential(Schedule):
    def __init__(self, config: ExponentialSchedule, total_epochs: int) -> None:
        super().__init__(config.warmup_epochs, total_epochs)
        self.gamma = config.gamma

    def shape(self, t: int) -> float:
        return float(self.gamma**t)


class _Step(Schedule):
    def __init__(self, config: StepSchedule, total_epochs: int) -> None:
        super().__init__(config.warmup_epochs, total_epochs)
        self.step_size = config.step_size
        self.gamma = config.gamma

    def shape(self, t: int) -> float:
        return float(self.gamma ** (t // self.step_size))


class _Piecewise(Schedule):
    def __init__(self, config: PiecewiseSchedule, total_epochs: int) -> None:
        super().__init__(config.warmup_epochs, total_epochs)
        self.milestones = list(config.milestones)
        self.gamma = config.gamma

    def shape(self, t: int) -> float:
        return float(self.gamma ** bisect.bisect_right(self.milestones, t))


class _Polynomial(Schedule):
    def __init__(self, config: PolynomialSchedule, total_epochs: int) -> None:
        super().__init__(config.warmup_epochs, total_epochs)
        self.power = config.power
        self.end = config.end_factor

    def shape(self, t: int) -> float:
        remaining = max(0.0, 1.0 - t / self.horizon)
        return float(self.end + (1.0 - self.end) * remaining**self.power)


class _Cosine(Schedule):
    def __init__(self, config: CosineSchedule, total_epochs: int) -> None:
        super().__init__(config.warmup_epochs, total_epochs)
        self.low = config.min_factor

    def shape(self, t: int) -> float:
        progress = min(1.0, t / self.horizon)
        return self.low + (1.0 - self.low) * (1.0 + math.cos(math.pi * progress)) / 2.0


class _Plateau(Schedule):
    """Cut the factor when val_loss stalls; like torch's ReduceLROnPlateau in 'rel' mode."""

    def __init__(self, config: PlateauSchedule, total_epochs: int) -> None:
        super().__init__(config.warmup_epochs, total_epochs)
        self.cut = config.factor
        self.patience = config.patience
        self.threshold = config.threshold
        self.min_factor = config.min_factor
        self.current = 1.0
        self.best = math.inf
        self.bad_epochs = 0

    def shape(self, t: int) -> float:
        return self.current

    def observe(self, epoch: int, val_loss: float) -> None:
        if epoch < self.warmup_epochs:
            return
        margin = abs(self.best) * self.threshold if math.isfinite(self.best) else 0.0
        if val_loss < self.best - margin:
            self.best = val_loss
            self.bad_epochs = 0
            return
        self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            self.current *= self.cut
            self.bad_epochs = 0

    @property
    def exhausted(self) -> bool:
        return self.current < self.min_factor

    def state_dict(self) -> dict[str, Any]:
        return {"current": self.current, "best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.current = float(state["current"])
        self.best = float(state["best"])
        self.bad_epochs = int(state["bad_epochs"])


def _constant(config: ConstantSchedule, total_epochs: int) -> Schedule:
    return Schedule(config.warmup_epochs, total_epochs)


SCHEDULES: dict[ScheduleName, Callable[[Any, int], Schedule]] = {
    ScheduleName.CONSTANT: _constant,
    ScheduleName.EXPONENTIAL: _Exponential,
    ScheduleName.STEP: _Step,
    ScheduleName.PIECEWISE: _Piecewise,
    ScheduleName.POLYNOMIAL: _Polynomial,
    ScheduleName.COSINE: _Cosine,
    ScheduleName.PLATEAU: _Plateau,
}


def build_schedule(config: ScheduleConfig, total_epochs: int) -> Schedule:
    """Build the schedule a trial's config names.

    Args:
        config: The parsed ``schedule`` entry of the trial's config.
        total_epochs: The trial's epoch budget (the horizon of cosine and polynomial).

    Returns:
        A fresh schedule at epoch 0.
    """
    return SCHEDULES[config.name](config, total_epochs)
