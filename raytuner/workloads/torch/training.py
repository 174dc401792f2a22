"""The training core, callable without Ray: a :class:`TrainingRun` advances one epoch per
:meth:`~TrainingRun.step` and saves or restores everything needed to continue exactly.

Data live on the device as tensors; an epoch indexes them with a shuffled permutation, so
each batch costs one forward and backward pass and nothing else. Each run owns its random
stream (:mod:`~raytuner.workloads.torch.random_stream`), so two runs in one process, in
parallel threads too, never disturb each other and a restored run draws the same numbers it
would have.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any

import torch

from raytuner.spec.torch_options import EarlyStopping, TorchTrainable
from raytuner.workloads.torch.datasets import Fold, load_table, make_folds
from raytuner.workloads.torch.finetune import read_weights, resolve
from raytuner.workloads.torch.fold import FoldTrainer
from raytuner.workloads.torch.hyperparams import ConfigError, Hyperparameters, parse_config
from raytuner.workloads.torch.random_stream import RandomStream
from raytuner.workloads.torch.schedules import build_schedule

STATE_FORMAT = 1


class StopReason(str, Enum):
    """Why a run stopped reporting."""

    MAX_EPOCHS = "max_epochs"
    EARLY_STOPPING = "early_stopping"
    LR_EXHAUSTED = "lr_exhausted"
    DIVERGED = "diverged"


class EarlyStopper:
    """Patience on one validation metric."""

    def __init__(self, config: EarlyStopping | None) -> None:
        self.config = config
        self.best = math.inf
        self.bad_epochs = 0

    def update(self, metrics: Mapping[str, float]) -> bool:
        """Record an epoch's metrics; True once the metric stalled for ``patience`` epochs."""
        if self.config is None:
            return False
        value = metrics[self.config.metric.value]
        loss = -value if self.config.metric.maximize else value
        if loss < self.best - self.config.min_delta:
            self.best = loss
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.config.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best = float(state["best"])
        self.bad_epochs = int(state["bad_epochs"])


class TrainingRun:
    """One trial's training: one network per fold, one shared lr schedule and stopping rule.

    Args:
        options: The workload's fixed options.
        config: The trial's config (or parsed hyperparameters).
        device: Where tensors live.
        base_dir: Folder that relative paths in the options are relative to.
        folds: Already split data (to share one load between runs); loaded when omitted.

    Raises:
        ConfigError: The config does not fit the workload.
        SpecError: The dataset cannot be loaded.
    """

    def __init__(
        self,
        options: TorchTrainable,
        config: Mapping[str, Any] | Hyperparameters,
        *,
        device: str | torch.device = "cpu",
        base_dir: str | Path = ".",
        folds: list[Fold] | None = None,
    ) -> None:
        self.options = options
        self.hp = config if isinstance(config, Hyperparameters) else parse_config(config)
        self.device = torch.device(device)
        data = folds if folds is not None else make_folds(load_table(options, base_dir), options)
        weights = read_weights(resolve(options.init_from, base_dir)) if options.init_from else None
        self.random = RandomStream(options.seed, self.device)
        with self.random.building():
            self.folds = [FoldTrainer(fold, options, self.hp, self.device, weights) for fold in data]
        self.schedule = build_schedule(self.hp.schedule, options.max_epochs)
        self.early = EarlyStopper(options.early_stopping)
        self.epoch = 0
        self.stop_reason: StopReason | None = None

    @property
    def finished(self) -> bool:
        return self.stop_reason is not None or self.epoch >= self.options.max_epochs

    @property
    def lr(self) -> float:
        """The base lr of the next epoch (the head's lr; other groups scale it)."""
        return self.hp.base_lr * self.schedule.factor(self.epoch)

    def step(self) -> dict[str, float]:
        """Train one epoch on every fold and evaluate.

        Returns:
            train_loss, val_loss and train/val_accuracy (classifiers) or val_rmse/val_mae
            (regression), averaged over folds, plus ``epoch`` (epochs done), ``lr`` and
            ``num_params`` (the network's parameters: a model-size objective to trade against).

        Raises:
            RuntimeError: The run has already finished.
        """
        if self.finished:
            raise RuntimeError(f"the run has finished ({self.stop_reason or StopReason.MAX_EPOCHS})")
        lr = self.lr
        per_fold = []
        with self.random.active():
            for fold in self.folds:
                fold.set_lr(lr)
                train = fold.train_epoch(self.hp.batch_size, self.hp.grad_clip)
                per_fold.append({**train, **fold.evaluate()})
        metrics = {key: sum(result[key] for result in per_fold) / len(per_fold) for key in per_fold[0]}
        self.schedule.observe(self.epoch, metrics["val_loss"])
        self.epoch += 1
        if not math.isfinite(metrics["train_loss"]):
            self.stop_reason = StopReason.DIVERGED
        elif self.early.update(metrics):
            self.stop_reason = StopReason.EARLY_STOPPING
        elif self.schedule.exhausted:
            self.stop_reason = StopReason.LR_EXHAUSTED
        elif self.epoch >= self.options.max_epochs:
            self.stop_reason = StopReason.MAX_EPOCHS
        return {**metrics, "epoch": float(self.epoch), "lr": lr, "num_params": float(self.num_params)}

    @property
    def num_params(self) -> int:
        """Parameters of one fold's network (every fold builds the same architecture)."""
        return sum(p.numel() for p in self.folds[0].network.parameters())

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: weights, optimizer, schedule, RNG, epoch."""
        return {
            "format": STATE_FORMAT,
            "builtin": self.options.builtin,
            "epoch": self.epoch,
            "stop_reason": None if self.stop_reason is None else self.stop_reason.value,
            "optimizer_name": self.hp.optimizer.name.value,
            "schedule_name": self.hp.schedule.name.value,
            "hyperparameters": self.hp.model_dump(mode="json"),
            "folds": [fold.state_dict() for fold in self.folds],
            "schedule": self.schedule.state_dict(),
            "early_stopping": self.early.state_dict(),
            "random": self.random.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a saved state under this run's (possibly new) config.

        The network must have the saved architecture. The optimizer state is kept when the
        optimizer is the same and the config's lr, momentum, weight decay... replace the
        saved ones; a different optimizer or schedule starts fresh.

        Raises:
            ConfigError: The state is from another workload, fold count or architecture.
        """
        if state.get("format") != STATE_FORMAT or state.get("builtin") != self.options.builtin:
            raise ConfigError(
                f"checkpoint is from {state.get('builtin')!r} (format {state.get('format')}), "
                f"not {self.options.builtin!r} (format {STATE_FORMAT})"
            )
        if len(state["folds"]) != len(self.folds):
            raise ConfigError(f"checkpoint has {len(state['folds'])} folds, this run has {len(self.folds)}")
        same_optimizer = state["optimizer_name"] == self.hp.optimizer.name.value
        for fold, saved in zip(self.folds, state["folds"], strict=True):
            fold.load_state_dict(saved, with_optimizer=same_optimizer)
        if state["schedule_name"] == self.hp.schedule.name.value:
            self.schedule.load_state_dict(state["schedule"])
        self.early.load_state_dict(state["early_stopping"])
        self.random.load_state_dict(state["random"])
        self.epoch = int(state["epoch"])
        self.stop_reason = None if state["stop_reason"] is None else StopReason(state["stop_reason"])
