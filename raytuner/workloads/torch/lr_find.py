"""The learning-rate range test: train briefly while raising the lr exponentially.

Start far too low, multiply the lr by a constant each step up to far too high, and record
the smoothed training loss. The loss first falls faster and faster, then turns and blows
up. The suggestion is the lr where the smoothed loss falls fastest (per log-lr); the
divergence lr is where it first exceeds ``diverge_factor`` times its best. A good tuning
range is roughly a decade around the suggestion (Smith 2017, "Cyclical Learning Rates").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raytuner.spec.torch_options import TorchTrainable


@dataclass(frozen=True)
class LrFindResult:
    """What the range test found.

    Attributes:
        lrs: The lr of each step.
        losses: The smoothed training loss after each step (same length as ``lrs``).
        suggested_lr: Where the smoothed loss fell fastest per log-lr.
        divergence_lr: Where the loss blew up, or None if it never did within ``max_lr``.
    """

    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    suggested_lr: float
    divergence_lr: float | None


def lr_range_test(
    options: TorchTrainable,
    config: Mapping[str, Any],
    *,
    min_lr: float = 1e-6,
    max_lr: float = 10.0,
    steps: int = 100,
    smoothing: float = 0.9,
    diverge_factor: float = 4.0,
    base_dir: str | Path = ".",
    device: str = "cpu",
) -> LrFindResult:
    """Run the lr range test on a workload's first fold.

    Args:
        options: The workload's options (dataset, seed...).
        config: A trial config (optimizer, batch_size, architecture); its lr is ignored.
        min_lr: The first step's lr.
        max_lr: The last step's lr.
        steps: Training steps (batches, cycling over shuffled training rows).
        smoothing: Weight of the past in the exponential moving average of the loss.
        diverge_factor: Stop once the smoothed loss exceeds this times its best.
        base_dir: Folder that relative paths in the options are relative to.
        device: Where to train.

    Returns:
        The lr series, the smoothed losses, the suggestion and the divergence lr.

    Raises:
        ValueError: The range or step count is unusable.
    """
    from raytuner.workloads.torch.random_stream import permutation
    from raytuner.workloads.torch.training import TrainingRun

    if not 0 < min_lr < max_lr or steps < 3 or not 0 <= smoothing < 1:
        raise ValueError(
            f"need 0 < min_lr < max_lr, steps >= 3 and 0 <= smoothing < 1; found min_lr={min_lr:g}, "
            f"max_lr={max_lr:g}, steps={steps}, smoothing={smoothing:g}"
        )
    run = TrainingRun(options, config, device=device, base_dir=base_dir)
    fold = run.folds[0]
    fold.network.train()
    ratio = (max_lr / min_lr) ** (1.0 / (steps - 1))
    rows = fold.x_train.shape[0]
    size = min(run.hp.batch_size, rows)
    lrs: list[float] = []
    losses: list[float] = []
    average, best = 0.0, math.inf
    divergence: float | None = None
    with run.random.active():
        order = permutation(rows, fold.x_train.device)
        start = 0
        for step in range(steps):
            if start + size > rows:
                order, start = permutation(rows, fold.x_train.device), 0
            index = order[start : start + size]
            start += size
            lr = min_lr * ratio**step
            fold.set_lr(lr)
            loss, _ = fold.train_batch(fold.x_train[index], fold.y_train[index], run.hp.grad_clip)
            value = float(loss.item())
            average = smoothing * average + (1 - smoothing) * value
            smoothed = average / (1 - smoothing ** (step + 1))
            lrs.append(lr)
            losses.append(smoothed)
            if not math.isfinite(smoothed) or smoothed > diverge_factor * best:
                divergence = lr
                break
            best = min(best, smoothed)
    return LrFindResult(tuple(lrs), tuple(losses), _steepest(lrs, losses), divergence)


def _steepest(lrs: list[float], losses: list[float]) -> float:
    """The lr where the loss falls fastest per log-lr, before the loss diverges."""
    usable = [index for index, loss in enumerate(losses) if math.isfinite(loss)]
    best_index = min(usable, key=losses.__getitem__) if usable else 0
    slopes = [
        ((losses[index + 1] - losses[index - 1]) / math.log(lrs[index + 1] / lrs[index - 1]), index)
        for index in range(1, best_index)
    ]
    if not slopes:
        return lrs[best_index]
    return lrs[min(slopes)[1]]
