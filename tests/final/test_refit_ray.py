"""raytuner refit after searches on the Ray backend: own code as one Ray trial, a built-in workload's test split."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

import raytuner

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def _train(config: dict[str, Any]) -> None:
    from ray import tune

    for step in range(1, config["steps"] + 1):
        with tempfile.TemporaryDirectory() as folder:
            Path(folder, "step.txt").write_text(f"{step} {os.getpid()}")
            tune.report({"loss": (config["x"] - 0.3) ** 2 + 1 / step}, checkpoint=tune.Checkpoint.from_directory(folder))


def test_refit_of_a_trainable_object_runs_one_ray_trial(ray_session: None, tmp_path: Path) -> None:
    experiment = raytuner.run(
        {
            "name": "own-ray",
            "storage": str(tmp_path / "runs"),
            "trainable": {"function": _train},
            "metric": "loss",
            "mode": "min",
            "space": {"x": {"uniform": [0.0, 1.0]}, "steps": 2},
            "search": {"algorithm": "random", "num_samples": 2, "seed": 4},
        },
        progress=False,
    )
    summary = experiment.refit(overrides=["space.steps=3"])
    assert summary.checkpoint is not None and summary.epochs == 3
    step, pid = (summary.checkpoint / "step.txt").read_text().split()
    assert step == "3" and int(pid) != os.getpid()  # a Ray worker wrote it
    assert json.loads((summary.folder / "metrics.json").read_text())["search"]["trial_id"] == experiment.best()[0].trial_id


def test_a_ray_kfold_search_records_its_test_split_and_refits(ray_session: None, tmp_path: Path) -> None:
    experiment = raytuner.run(
        {
            "name": "wine-ray",
            "storage": str(tmp_path / "runs"),
            "trainable": {
                "builtin": "mlp_classifier",
                "dataset": "wine",
                "max_epochs": 2,
                "validation": {"folds": 3},
                "test_fraction": 0.2,
            },
            "metric": "val_accuracy",
            "mode": "max",
            "space": {"lr": 0.01, "hidden": 16},
            "search": {"algorithm": "random", "num_samples": 1, "seed": 0},
            "checkpoint": {"every": 0},
        },
        progress=False,
    )
    assert json.loads((Path(experiment.folder) / "test_split.json").read_text())["rows"] == 36
    summary = experiment.refit()
    assert (summary.train_rows, summary.test_rows) == (142, 36) and "test_accuracy" in summary.test
