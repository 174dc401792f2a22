"""The training core without Ray: every optimizer and schedule, checkpoints, fine-tuning."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import torch

from raytuner.spec.torch_options import OPTIONS_BY_BUILTIN, TorchTrainable
from raytuner.workloads.torch.datasets import Fold, load_table, make_folds
from raytuner.workloads.torch.hyperparams import ConfigError, OptimizerName, ScheduleName
from raytuner.workloads.torch.trainable import load_state, save_state
from raytuner.workloads.torch.training import StopReason, TrainingRun

SMALL = {"hidden": 32, "depth": 2, "batch_size": 64}


def _options(builtin: str = "mlp_classifier", **fields: Any) -> TorchTrainable:
    return OPTIONS_BY_BUILTIN[builtin].model_validate({"builtin": builtin, "dataset": "digits", **fields})


@pytest.fixture(scope="module")
def digits() -> list[Fold]:
    options = _options()
    return make_folds(load_table(options), options)


def _run(config: dict[str, Any], folds: list[Fold], **fields: Any) -> TrainingRun:
    return TrainingRun(_options(**fields), {**SMALL, **config}, folds=folds)


def _weights(run: TrainingRun) -> list[torch.Tensor]:
    return [parameter.detach().clone() for parameter in run.folds[0].network.parameters()]


OPTIMIZER_CONFIGS: dict[OptimizerName, dict[str, Any]] = {
    OptimizerName.SGD: {"name": "sgd", "momentum": 0.9, "nesterov": True},
    OptimizerName.ADAM: {"name": "adam", "beta1": 0.85, "amsgrad": True},
    OptimizerName.ADAMW: {"name": "adamw", "betas": [0.9, 0.99]},
    OptimizerName.RMSPROP: {"name": "rmsprop", "alpha": 0.9, "momentum": 0.5, "centered": True},
    OptimizerName.ADAGRAD: {"name": "adagrad", "lr_decay": 1e-4},
    OptimizerName.ADADELTA: {"name": "adadelta", "rho": 0.95},
}


@pytest.mark.parametrize("name", list(OptimizerName))
def test_every_optimizer_trains(name: OptimizerName, digits: list[Fold]) -> None:
    run = _run({"optimizer": OPTIMIZER_CONFIGS[name], "weight_decay": 1e-5}, digits, max_epochs=3)
    before = _weights(run)
    first = run.step()
    second = run.step()
    assert type(run.folds[0].optimizer).__name__.lower() == name.value
    assert all(not torch.equal(old, new) for old, new in zip(before, _weights(run), strict=True))
    assert second["train_loss"] < first["train_loss"] < 2.5
    assert run.folds[0].optimizer.param_groups[0]["weight_decay"] == 1e-5


SCHEDULE_CONFIGS: dict[ScheduleName, dict[str, Any]] = {
    ScheduleName.CONSTANT: {"name": "constant"},
    ScheduleName.EXPONENTIAL: {"name": "exponential", "gamma": 0.5},
    ScheduleName.STEP: {"name": "step", "step_size": 1, "gamma": 0.1},
    ScheduleName.PIECEWISE: {"name": "piecewise", "milestones": [1], "gamma": 0.2},
    ScheduleName.POLYNOMIAL: {"name": "polynomial", "power": 2.0},
    ScheduleName.COSINE: {"name": "cosine", "warmup_epochs": 1},
    ScheduleName.PLATEAU: {"name": "plateau", "factor": 0.1, "patience": 0},
}


@pytest.mark.parametrize("name", list(ScheduleName))
def test_every_schedule_sets_the_reported_lr(name: ScheduleName, digits: list[Fold]) -> None:
    run = _run({"lr": 0.01, "schedule": SCHEDULE_CONFIGS[name]}, digits, max_epochs=4)
    reported = [run.step()["lr"] for _ in range(2)]
    expected = [0.01 * run.schedule.factor(epoch) for epoch in range(2)] if name != ScheduleName.PLATEAU else [0.01, 0.01]
    assert reported == pytest.approx(expected)
    assert run.folds[0].optimizer.param_groups[-1]["lr"] == pytest.approx(reported[-1])
    if name in (ScheduleName.EXPONENTIAL, ScheduleName.STEP, ScheduleName.PIECEWISE, ScheduleName.COSINE):
        assert reported[1] != reported[0]


def test_digits_mlp_learns_in_a_few_epochs(digits: list[Fold]) -> None:
    run = _run({"lr": 3e-3, "batch_size": 32, "hidden": 64, "optimizer": "adam"}, digits, max_epochs=3)
    results = [run.step() for _ in range(3)]
    assert results[-1]["val_accuracy"] > 0.9
    assert results[-1]["train_loss"] < results[0]["train_loss"]
    assert [result["epoch"] for result in results] == [1, 2, 3]
    assert run.finished and run.stop_reason is StopReason.MAX_EPOCHS
    with pytest.raises(RuntimeError, match="finished"):
        run.step()


def test_checkpoint_restore_continues_exactly(digits: list[Fold], tmp_path: Path) -> None:
    config = {
        "lr": 0.05,
        "dropout": 0.2,
        "optimizer": {"name": "sgd", "momentum": 0.9},
        "schedule": {"name": "cosine", "warmup_epochs": 1},
    }
    straight = _run(config, digits, max_epochs=4)
    expected = [straight.step() for _ in range(4)]
    first = _run(config, digits, max_epochs=4)
    head = [first.step() for _ in range(2)]
    save_state(first, tmp_path)
    del first
    resumed = _run(config, digits, max_epochs=4)
    resumed.load_state_dict(load_state(tmp_path))
    assert resumed.epoch == 2
    tail = [resumed.step() for _ in range(2)]
    assert head + tail == expected  # exact: same weights, momentum, schedule and random stream


def test_interleaved_runs_do_not_disturb_each_other(digits: list[Fold]) -> None:
    config = {"dropout": 0.3}
    alone = _run(config, digits, max_epochs=2)
    expected = [alone.step() for _ in range(2)]
    one, other = _run(config, digits, max_epochs=2), _run(config, digits, max_epochs=2, seed=1)
    interleaved = []
    for _ in range(2):
        interleaved.append(one.step())
        other.step()
        torch.rand(10)  # someone else's randomness in between
    assert interleaved == expected


def test_runs_in_parallel_threads_draw_what_each_draws_alone(digits: list[Fold]) -> None:
    """Inline trials train in threads of one process: each run's shuffles, dropout masks and
    initial weights are its own, so a seeded search repeats (they swapped torch's global
    generator per epoch, and threads drew each other's numbers)."""
    config = {"dropout": 0.3, "batch_size": 16}

    def train(seed: int) -> list[dict[str, float]]:
        run = _run(config, digits, max_epochs=3, seed=seed)
        return [run.step() for _ in range(3)]

    expected = {seed: train(seed) for seed in (0, 1)}
    got: dict[int, list[list[dict[str, float]]]] = {0: [], 1: []}

    def worker(seed: int) -> None:
        got[seed].append(train(seed))

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in (0, 1, 0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert got == {seed: [expected[seed]] * 2 for seed in (0, 1)}


def test_restore_with_new_hyperparameters_applies_them(digits: list[Fold]) -> None:
    old = _run({"lr": 0.01, "optimizer": {"name": "sgd", "momentum": 0.5}, "dropout": 0.1}, digits, max_epochs=5)
    old.step()
    state = old.state_dict()
    new = _run(
        {"lr": 0.08, "optimizer": {"name": "sgd", "momentum": 0.95}, "weight_decay": 1e-4, "dropout": 0.4},
        digits,
        max_epochs=5,
    )
    new.load_state_dict(state)
    optimizer = new.folds[0].optimizer
    assert optimizer.state  # momentum buffers survived the restore
    group = optimizer.param_groups[0]
    assert (group["momentum"], group["weight_decay"]) == (0.95, 1e-4)
    assert new.step()["lr"] == pytest.approx(0.08)
    assert group["lr"] == pytest.approx(0.08)
    assert all(module.p == 0.4 for module in new.folds[0].network.modules() if isinstance(module, torch.nn.Dropout))


def test_restore_into_another_architecture_or_optimizer(digits: list[Fold]) -> None:
    old = _run({"optimizer": "sgd"}, digits, max_epochs=3)
    old.step()
    with pytest.raises(ConfigError, match="does not match the config"):
        _run({"hidden": 16}, digits, max_epochs=3).load_state_dict(old.state_dict())
    switched = _run({"optimizer": "adam"}, digits, max_epochs=3)
    switched.load_state_dict(old.state_dict())  # weights kept, a fresh Adam
    assert switched.epoch == 1 and not switched.folds[0].optimizer.state


def test_plateau_stops_the_run_below_one_1024th_of_the_lr(digits: list[Fold]) -> None:
    config = {
        "lr": 1e-12,
        "optimizer": {"name": "sgd", "momentum": 0.0},
        "schedule": {"name": "plateau", "factor": 0.1, "patience": 0},
    }
    run = _run(config, digits, max_epochs=50)
    lrs = []
    while not run.finished:
        lrs.append(run.step()["lr"])
    assert run.stop_reason is StopReason.LR_EXHAUSTED
    assert lrs == pytest.approx([1e-12, 1e-12, 1e-13, 1e-14, 1e-15])


def test_early_stopping_on_a_stalled_metric(digits: list[Fold]) -> None:
    config = {"lr": 1e-12, "optimizer": "sgd"}
    run = _run(config, digits, max_epochs=50, early_stopping={"patience": 2, "metric": "val_accuracy"})
    epochs = 0
    while not run.finished:
        run.step()
        epochs += 1
    assert run.stop_reason is StopReason.EARLY_STOPPING and epochs == 3


def test_kfold_reports_the_mean_across_folds() -> None:
    options = _options(validation={"folds": 3})
    run = TrainingRun(options, {**SMALL, "lr": 3e-3})
    metrics = run.step()
    assert len(run.folds) == 3
    per_fold = [fold.evaluate()["val_accuracy"] for fold in run.folds]
    assert len(set(per_fold)) > 1
    assert metrics["val_accuracy"] == pytest.approx(sum(per_fold) / 3)


def test_frozen_layers_do_not_change(digits: list[Fold]) -> None:
    run = _run({"lr": 0.05, "optimizer": "sgd"}, digits, max_epochs=2, freeze_layers=1)
    network = run.folds[0].network
    frozen = [parameter.detach().clone() for parameter in network.groups[0].parameters()]
    trained = [parameter.detach().clone() for parameter in network.groups[1].parameters()]
    run.step()
    assert all(torch.equal(old, new) for old, new in zip(frozen, network.groups[0].parameters(), strict=True))
    assert all(not torch.equal(old, new) for old, new in zip(trained, network.groups[1].parameters(), strict=True))
    with pytest.raises(ConfigError, match="leaves nothing to train"):
        _run({}, digits, freeze_layers=3)


def test_fine_tuning_starts_from_saved_weights_with_group_lrs(digits: list[Fold], tmp_path: Path) -> None:
    pretrained = _run({"lr": 3e-3}, digits, max_epochs=2)
    pretrained.step()
    (tmp_path / "ckpt").mkdir()
    save_state(pretrained, tmp_path / "ckpt")
    tuned = TrainingRun(
        _options(init_from="ckpt", freeze_layers=1),
        {**SMALL, "lr": 0.1, "layer_lr_decay": 0.5, "optimizer": "sgd"},
        folds=digits,
        base_dir=tmp_path,
    )
    source = pretrained.folds[0].network.state_dict()
    assert all(torch.equal(value, source[name]) for name, value in tuned.folds[0].network.state_dict().items())
    tuned.step()
    assert [group["lr"] for group in tuned.folds[0].optimizer.param_groups] == pytest.approx([0.05, 0.1])
    assert tuned.step()["val_accuracy"] > 0.8


def test_layer_lr_multipliers_must_match_the_groups(digits: list[Fold]) -> None:
    run = _run({"lr": 0.1, "layer_lr_multipliers": [0.0, 0.5, 1.0], "optimizer": "sgd"}, digits)
    assert [group["lr"] for group in run.folds[0].optimizer.param_groups] == pytest.approx([0.0, 0.05, 0.1])
    with pytest.raises(ConfigError, match="3 layer groups"):
        _run({"layer_lr_multipliers": [1.0, 1.0]}, digits)


def test_regressor_on_diabetes_beats_the_mean() -> None:
    options = _options("mlp_regressor", dataset="diabetes", max_epochs=8)
    run = TrainingRun(options, {"lr": 3e-3, "batch_size": 32, "hidden": 64})
    results = [run.step() for _ in range(8)]
    baseline = run.folds[0].fold.target_std  # rmse of predicting the training mean, roughly
    assert results[-1]["val_rmse"] < 0.85 * baseline
    assert results[-1]["val_mae"] < results[-1]["val_rmse"]
    assert "val_accuracy" not in results[-1]


def test_cnn_on_digit_images() -> None:
    run = TrainingRun(_options("cnn_classifier", max_epochs=3), {"lr": 3e-3, "batch_size": 32, "channels": 8, "hidden": 32})
    assert len(run.folds[0].network.groups) == 4  # two conv blocks, the dense layer, the head
    results = [run.step() for _ in range(3)]
    assert results[-1]["val_accuracy"] > 0.8
