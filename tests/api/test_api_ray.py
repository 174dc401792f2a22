"""The Python API on the Ray backend: trainables that exist only as objects, shipped to Ray's
workers; plain Ray Tune folders opened for reading."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from ray import tune

import raytuner

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def module_level(config: dict[str, Any]) -> None:
    """Importable here only as ``test_api_ray``, which Ray's workers cannot import."""
    for t in range(1, 3):
        tune.report({"loss": (config["x"] - 0.5) ** 2 + 1.0 / t, "worker_pid": os.getpid()})


def _nested_function() -> Any:
    def train(config: dict[str, Any]) -> None:
        for t in range(1, 3):
            tune.report({"loss": (config["x"] - 0.5) ** 2 + 1.0 / t, "worker_pid": os.getpid()})

    return train


def _nested_class() -> Any:
    class Quadratic(tune.Trainable):
        def setup(self, config: dict[str, Any]) -> None:
            self.x = config["x"]
            self.steps = 0

        def step(self) -> dict[str, Any]:
            self.steps += 1
            return {"loss": (self.x - 0.5) ** 2 + 1.0 / self.steps, "done": self.steps >= 2, "worker_pid": os.getpid()}

        def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any]:  # Ray saves a class trainable at its end
            return {"steps": self.steps}

        def load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
            self.steps = checkpoint["steps"]

    return Quadratic


@pytest.mark.parametrize("make", [_nested_function, lambda: module_level, _nested_class], ids=["nested", "module", "class"])
def test_a_trainable_object_is_shipped_to_rays_workers(ray_session: None, tmp_path: Path, make: Any) -> None:
    trainable = make()
    experiment = raytuner.run(
        {
            "name": "objects",
            "storage": str(tmp_path / "runs"),
            "trainable": {"function": trainable},
            "metric": "loss",
            "mode": "min",
            "space": {"x": {"uniform": [0.0, 1.0]}},
            "search": {"algorithm": "random", "num_samples": 2, "seed": 4},
        },
        progress=False,
    )
    assert experiment.state == "completed"
    trials = experiment.trials().to_pandas()
    assert len(trials) == 2 and set(trials["status"]) == {"completed"}, trials[["status", "error"]]
    best = experiment.best()[0]
    assert best.values["loss"] == pytest.approx((best.config["x"] - 0.5) ** 2 + 0.5)
    assert os.getpid() not in set(experiment.results().column("worker_pid").to_pylist())  # ran in Ray's workers


def test_open_reads_a_plain_ray_tune_folder(ray_session: None, tmp_path: Path) -> None:
    def train(config: dict[str, Any]) -> None:
        tune.report({"loss": (config["x"] - 1.0) ** 2})

    saved = os.environ.pop("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", None)  # Ray's default loggers on
    try:
        tune.Tuner(
            train,
            param_space={"x": tune.grid_search([0.0, 0.5, 2.5])},
            tune_config=tune.TuneConfig(metric="loss", mode="min"),
            run_config=tune.RunConfig(name="plain", storage_path=str(tmp_path / "ray"), verbose=0),
        ).fit()
    finally:
        if saved is not None:
            os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = saved

    experiment = raytuner.open(tmp_path / "ray" / "plain")
    assert experiment.name == "plain" and experiment.spec is None
    assert experiment.trials().num_rows == 3 and experiment.results().num_rows == 3
    best = experiment.best()
    assert best[0].config == {"x": 0.5} and best[0].values == {"loss": pytest.approx(0.25)}
    assert raytuner.open("plain", storage=str(tmp_path / "ray")).folder == str(tmp_path / "ray" / "plain")
    assert experiment.report(tmp_path / "plain.html").is_file()
    with pytest.raises(raytuner.UsageError, match="plain Ray Tune folder"):
        experiment.resume(progress=False)


class _CtrlCAfterFirstTrial:
    """A listener that presses Ctrl-C (SIGINT to the driver) once the first trial completes."""

    def __init__(self) -> None:
        self.sent = False

    def handle(self, event: Any, book: Any) -> None:
        if not self.sent and event.kind.value == "trial_completed":
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)


def test_a_trainable_objects_run_is_resumed_and_extended_on_ray(ray_session: None, tmp_path: Path) -> None:
    train = _nested_function()
    spec = {
        "name": "again",
        "storage": str(tmp_path / "runs"),
        "trainable": {"function": train},
        "metric": "loss",
        "mode": "min",
        "space": {"x": {"uniform": [0.0, 1.0]}},
        "search": {"algorithm": "random", "num_samples": 3, "seed": 4, "max_concurrent": 1},
    }
    experiment = raytuner.run(spec, listener=_CtrlCAfterFirstTrial())
    assert experiment.state == "interrupted"
    assert experiment.trials().column("status").to_pylist().count("completed") < 3

    resumed = experiment.resume(progress=False)  # the object it was run with, remembered
    assert resumed.state == "completed"
    assert resumed.trials().column("status").to_pylist() == ["completed"] * 3
    assert os.getpid() not in set(resumed.results().column("worker_pid").to_pylist())

    extended = raytuner.open("again", storage=str(tmp_path / "runs")).extend(1, trainable=train, progress=False)
    assert extended.state == "completed" and extended.trials().num_rows == 4
