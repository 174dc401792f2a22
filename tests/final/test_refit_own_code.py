"""raytuner refit of the user's own trainable: one trial of the best configuration, its last checkpoint kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import raytuner
from raytuner.cli import app

pytestmark = pytest.mark.slow

TRAIN = """
import os, tempfile
from ray import tune

def train(config):
    for step in range(1, config["steps"] + 1):
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "step.txt"), "w") as out:
                out.write(str(step))
            tune.report({"loss": (config["x"] - 0.3) ** 2 + 1 / step}, checkpoint=tune.Checkpoint.from_directory(folder))
"""


def test_refit_runs_own_code_once_and_keeps_its_last_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "own_refit_train.py").write_text(TRAIN)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: own\n"
        f"storage: {tmp_path / 'runs'}\n"
        "trainable: {function: own_refit_train:train}\n"
        "metric: loss\nmode: min\n"
        "space: {x: {uniform: [0, 1]}, steps: 2}\n"
        "search: {algorithm: random, num_samples: 3, seed: 1}\n"
        "execution: {backend: inline}\n"
    )
    experiment = raytuner.run(str(spec), progress=False)
    best = experiment.best()[0]
    result = CliRunner().invoke(app, ["refit", experiment.folder, "--set", "space.steps=4", "--json"])
    assert result.exit_code == 0, result.output
    refit = Path(experiment.folder) / "refit"
    assert (refit / "checkpoint" / "step.txt").read_text() == "4"  # the last of 4 steps, not the search's 2
    metrics = json.loads((refit / "metrics.json").read_text())
    assert metrics["search"]["trial_id"] == best.trial_id and metrics["refit"]["iterations"] == 4
    assert metrics["config"] == {**best.config, "steps": 4}
    assert metrics["refit"]["loss"] == pytest.approx((best.config["x"] - 0.3) ** 2 + 1 / 4)
