"""One fold's network, optimizer and data on the device: the per-batch training step."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from raytuner.spec.torch_options import TorchTrainable
from raytuner.workloads.torch.datasets import Fold
from raytuner.workloads.torch.finetune import freeze, load_matching, lr_multipliers
from raytuner.workloads.torch.hyperparams import ConfigError, Hyperparameters
from raytuner.workloads.torch.networks import LayeredNetwork, build_cnn, build_mlp
from raytuner.workloads.torch.optimizers import apply_settings, build_optimizer, set_lr
from raytuner.workloads.torch.random_stream import permutation

EVAL_CHUNK = 8192


@dataclass(frozen=True)
class Task:
    """What a workload builds and how it scores: classification or regression."""

    build: Callable[[Fold, Hyperparameters], LayeredNetwork]
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    classifier: bool


def _mlp_classifier(fold: Fold, hp: Hyperparameters) -> LayeredNetwork:
    return build_mlp(fold.x_train.shape[1], fold.classes or 2, hp)


def _mlp_regressor(fold: Fold, hp: Hyperparameters) -> LayeredNetwork:
    return build_mlp(fold.x_train.shape[1], 1, hp)


def _cnn_classifier(fold: Fold, hp: Hyperparameters) -> LayeredNetwork:
    if fold.image_shape is None:
        raise ConfigError("cnn_classifier needs an image shape")
    return build_cnn(fold.image_shape, fold.classes or 2, hp)


def _mse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return nn.functional.mse_loss(output.squeeze(-1), target)


TASKS: dict[str, Task] = {
    "mlp_classifier": Task(_mlp_classifier, nn.functional.cross_entropy, classifier=True),
    "mlp_regressor": Task(_mlp_regressor, _mse, classifier=False),
    "cnn_classifier": Task(_cnn_classifier, nn.functional.cross_entropy, classifier=True),
}


class FoldTrainer:
    """Trains and evaluates one network on one fold.

    Args:
        fold: The fold's scaled data.
        options: The workload's options (builtin, freeze_layers).
        hp: The trial's hyperparameters.
        device: Where the data and network live.
        weights: Pretrained weights to start from (fine-tuning), or None.
    """

    def __init__(
        self,
        fold: Fold,
        options: TorchTrainable,
        hp: Hyperparameters,
        device: torch.device,
        weights: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        self.task = TASKS[options.builtin]
        self.fold = fold
        self.x_train = torch.from_numpy(fold.x_train).to(device)
        self.y_train = torch.from_numpy(fold.y_train).to(device)
        self.x_val = torch.from_numpy(fold.x_val).to(device)
        self.y_val = torch.from_numpy(fold.y_val).to(device)
        self.network = self.task.build(fold, hp)
        if weights is not None:
            load_matching(self.network, weights)
        self.network.to(device)
        if options.freeze_layers:
            freeze(self.network, options.freeze_layers)
        self.frozen = options.freeze_layers
        self.multipliers = lr_multipliers(len(self.network.groups), hp)[self.frozen :]
        groups: list[dict[str, Any]] = [
            {"params": list(group.parameters()), "lr_mult": multiplier}
            for group, multiplier in zip(self.network.groups[self.frozen :], self.multipliers, strict=True)
        ]
        self.optimizer = build_optimizer(groups, hp)
        self.hp = hp
        self.trainable = [parameter for group in groups for parameter in group["params"]]

    def set_lr(self, base_lr: float) -> None:
        set_lr(self.optimizer, base_lr)

    def train_batch(
        self, x: torch.Tensor, y: torch.Tensor, grad_clip: float | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on a batch.

        Returns:
            The batch's mean loss and the network's output, both detached.
        """
        output = self.network(x)
        loss = self.task.loss(output, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(self.trainable, grad_clip)
        self.optimizer.step()
        return loss.detach(), output.detach()

    def train_epoch(self, batch_size: int, grad_clip: float | None) -> dict[str, float]:
        """One pass over the training rows in a fresh random order.

        Returns:
            ``train_loss`` (mean over rows, as trained, dropout on) and, for classifiers,
            ``train_accuracy`` of the same outputs.
        """
        self.network.train()
        rows = self.x_train.shape[0]
        size = min(batch_size, rows)
        order = permutation(rows, self.x_train.device)
        loss_sum = torch.zeros((), device=self.x_train.device)
        correct = torch.zeros((), device=self.x_train.device, dtype=torch.long)
        for start in range(0, rows, size):
            index = order[start : start + size]
            target = self.y_train[index]
            loss, output = self.train_batch(self.x_train[index], target, grad_clip)
            loss_sum += loss * index.shape[0]
            if self.task.classifier:
                correct += (output.argmax(dim=1) == target).sum()
        metrics = {"train_loss": float(loss_sum.item()) / rows}
        if self.task.classifier:
            metrics["train_accuracy"] = float(correct.item()) / rows
        return metrics

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Validation metrics: val_loss and val_accuracy, or val_loss, val_rmse and val_mae."""
        self.network.eval()
        rows = self.x_val.shape[0]
        loss_sum = torch.zeros((), device=self.x_val.device)
        hits = torch.zeros((), device=self.x_val.device)
        for start in range(0, rows, EVAL_CHUNK):
            x, y = self.x_val[start : start + EVAL_CHUNK], self.y_val[start : start + EVAL_CHUNK]
            output = self.network(x)
            loss_sum += self.task.loss(output, y) * x.shape[0]
            if self.task.classifier:
                hits += (output.argmax(dim=1) == y).sum()
            else:
                hits += (output.squeeze(-1) - y).abs().sum()
        val_loss = float(loss_sum.item()) / rows
        if self.task.classifier:
            return {"val_loss": val_loss, "val_accuracy": float(hits.item()) / rows}
        scale = self.fold.target_std
        rmse = math.sqrt(val_loss) * scale if math.isfinite(val_loss) else math.inf
        return {"val_loss": val_loss, "val_rmse": rmse, "val_mae": float(hits.item()) / rows * scale}

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.network.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any], *, with_optimizer: bool) -> None:
        """Load saved weights (and optimizer state), then re-apply this config's settings.

        Raises:
            ConfigError: The saved network has another architecture.
        """
        try:
            self.network.load_state_dict(state["model"])
        except RuntimeError as exc:
            raise ConfigError(
                "checkpoint's network does not match the config: depth, hidden, channels and "
                f"kernel_size cannot change when a trial is restored ({exc})"
            ) from exc
        if with_optimizer:
            self.optimizer.load_state_dict(state["optimizer"])
            apply_settings(self.optimizer, self.hp, self.multipliers)
