"""The function trainable inside a real Ray Tune run on a local Ray."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import cloudpickle
import pytest

from raytuner.workloads.torch.options import MlpClassifierTrainable
from raytuner.workloads.torch.trainable import load_state, make_trainable


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    import ray

    ray.init(num_cpus=2, _node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


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


@pytest.mark.ray
@pytest.mark.skip(reason="PBT exploit check failed intermittently when last run; rework with issue 5")
def test_pbt_exploit_restores_checkpoints_with_the_new_lr(local_ray: None, tmp_path: Path) -> None:
    from ray import tune
    from ray.tune.schedulers import PopulationBasedTraining

    options = MlpClassifierTrainable.model_validate({"builtin": "mlp_classifier", "dataset": "digits", "max_epochs": 4})
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
        tune_config=tune.TuneConfig(metric="val_accuracy", mode="max", scheduler=scheduler),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="pbt", verbose=0),
    )
    results = tuner.fit()
    assert results.num_errors == 0 and len(results) == 2
    exploited = 0
    for index in range(len(results)):
        result = results[index]
        history = result.metrics_dataframe
        assert history is not None and result.config is not None
        assert list(history["epoch"]) == list(history["training_iteration"])  # the epoch came from the checkpoint
        assert history["lr"].iloc[-1] == pytest.approx(result.config["lr"])  # the new lr was applied
        exploited += result.config["lr"] not in (0.001, 0.1)
    assert exploited >= 1
