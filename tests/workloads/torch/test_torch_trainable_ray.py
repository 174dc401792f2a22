"""The function trainable inside a real Ray Tune run on a local Ray."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from raytuner.spec.torch_options import MlpClassifierTrainable
from raytuner.workloads.torch.trainable import load_state, make_trainable


@pytest.fixture
def local_ray(ray_session: None) -> None:
    """The session's shared local Ray (tests/conftest.py): one Ray per test process."""


def test_trainable_is_picklable_over_plain_data() -> None:
    options = MlpClassifierTrainable.model_validate({"builtin": "mlp_classifier", "dataset": "digits"})
    train = make_trainable(options, checkpoint_every=2)
    clone = pickle.loads(cloudpickle.dumps(train))
    assert clone.__name__ == "mlp_classifier" and callable(clone)
    with pytest.raises(ValueError, match="checkpoint_every"):
        make_trainable(options, checkpoint_every=-1)


@pytest.mark.ray
def test_two_trials_report_every_epoch_and_checkpoint(local_ray: None, tmp_path: Path) -> None:
    from ray import tune

    options = MlpClassifierTrainable.model_validate({"builtin": "mlp_classifier", "dataset": "digits", "max_epochs": 3})
    tuner = tune.Tuner(
        make_trainable(options, checkpoint_every=2),
        param_space={
            "lr": tune.grid_search([0.05, 0.1]),
            "hidden": 32,
            "optimizer": {"name": "sgd", "momentum": 0.9},
        },
        tune_config=tune.TuneConfig(metric="val_accuracy", mode="max"),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="torch", verbose=0),
    )
    results = tuner.fit()
    assert results.num_errors == 0 and len(results) == 2
    for index in range(len(results)):
        result = results[index]
        history = result.metrics_dataframe
        assert history is not None and result.metrics is not None and result.config is not None
        assert list(history["epoch"]) == [1, 2, 3]
        assert {"train_loss", "val_loss", "train_accuracy", "val_accuracy", "lr"} <= set(history.columns)
        assert list(history["lr"]) == pytest.approx([result.config["lr"]] * 3)
        assert result.metrics["val_accuracy"] > 0.8
        assert result.checkpoint is not None
        with result.checkpoint.as_directory() as folder:
            assert load_state(Path(folder))["epoch"] == 3  # the last epoch is always saved


class _Reports:
    """Every result as the driver saw it: (epoch, training_iteration, lr, config lr)."""

    def __init__(self) -> None:
        from ray import tune

        class Collect(tune.Callback):
            def on_trial_result(self, iteration: int, trials: Any, trial: Any, result: dict[str, Any], **info: Any) -> None:
                rows.append((result["epoch"], result["training_iteration"], result["lr"], result["config"]["lr"]))

        rows: list[tuple[float, int, float, float]] = []
        self.rows = rows
        self.callback = Collect()


@pytest.mark.ray
def test_pbt_exploit_restores_checkpoints_with_the_new_lr(local_ray: None, tmp_path: Path) -> None:
    from ray import tune
    from ray.tune.schedulers import PopulationBasedTraining

    options = MlpClassifierTrainable.model_validate({"builtin": "mlp_classifier", "dataset": "digits", "max_epochs": 3})
    reports = _Reports()
    scheduler = PopulationBasedTraining(
        time_attr="training_iteration",
        perturbation_interval=1,
        synch=True,
        quantile_fraction=0.5,
        resample_probability=1.0,
        hyperparam_mutations={"lr": [0.02, 0.03, 0.2, 0.3]},
    )
    tuner = tune.Tuner(
        make_trainable(options, checkpoint_every=1),
        param_space={"lr": tune.grid_search([0.001, 0.1]), "hidden": 32, "optimizer": "sgd"},
        tune_config=tune.TuneConfig(metric="val_accuracy", mode="max", scheduler=scheduler, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="pbt", verbose=0, callbacks=[reports.callback]),
    )
    results = tuner.fit()
    assert results.num_errors == 0 and len(results) == 2
    assert len(reports.rows) >= 6
    for epoch, iteration, lr, config_lr in reports.rows:
        assert epoch == iteration  # a restored clone continues from the checkpoint's epoch
        assert lr == pytest.approx(config_lr)  # and trains with its new lr
    assert any(config_lr not in (0.001, 0.1) for *_, config_lr in reports.rows)  # PBT did explore
