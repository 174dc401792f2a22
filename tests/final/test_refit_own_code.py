"""raytuner refit of the user's own trainable: one trial of the best configuration, its last checkpoint kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import raytuner
from raytuner.cli import app
from raytuner.final.refit_table import read_refit_row
from raytuner.results.folder import Folder
from raytuner.results.reader import find_experiment

pytestmark = pytest.mark.slow

TRAIN = """
import os, tempfile
from ray import tune

def train(config):
    for step in range(1, config["steps"] + 1):
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "step.txt"), "w") as out:
                out.write(str(step))
            loss = (config["x"] - 0.3) ** 2 + 1 / step
            tune.report({"loss": loss, "test_loss": 2 * loss}, checkpoint=tune.Checkpoint.from_directory(folder))
"""


def _searched(tmp_path: Path, space: str, search: str) -> raytuner.Experiment:
    (tmp_path / "own_refit_train.py").write_text(TRAIN)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: own\n"
        f"storage: {tmp_path / 'runs'}\n"
        "trainable: {function: own_refit_train:train}\n"
        "metric: loss\nmode: min\n"
        f"space: {space}\n"
        f"search: {search}\n"
        "execution: {backend: inline}\n"
    )
    return raytuner.run(str(spec), progress=False)


def test_refit_runs_own_code_once_and_keeps_its_last_checkpoint(tmp_path: Path) -> None:
    experiment = _searched(tmp_path, "{x: {uniform: [0, 1]}, steps: 2}", "{algorithm: random, num_samples: 3, seed: 1}")
    best = experiment.best()[0]
    result = CliRunner().invoke(app, ["refit", experiment.folder, "--set", "space.steps=4", "--json"])
    assert result.exit_code == 0, result.output
    refit = Path(experiment.folder) / "refit"
    assert (refit / "checkpoint" / "step.txt").read_text() == "4"  # the last of 4 steps, not the search's 2
    metrics = json.loads((refit / "metrics.json").read_text())
    assert metrics["search"]["trial_id"] == best.trial_id and metrics["refit"]["iterations"] == 4
    assert metrics["config"] == {**best.config, "steps": 4}
    loss = (best.config["x"] - 0.3) ** 2 + 1 / 4
    assert metrics["refit"]["loss"] == pytest.approx(loss)
    # the search's best validation score next to the refit's last reported metrics, its test_* as its test score
    assert metrics["search"]["loss"] == best.values["loss"]
    assert metrics["refit"]["test_loss"] == pytest.approx(2 * loss) and metrics["reported"]["loss"] == pytest.approx(loss)
    row = read_refit_row(Folder.local(Path(experiment.folder)))
    assert row is not None and (row.trial_id, row.epochs, row.backend) == (best.trial_id, 4, "inline")
    assert row.test_metric == "test_loss" and row.test_value == pytest.approx(2 * loss)
    assert row.checkpoint == str(refit / "checkpoint") and row.config == metrics["config"]
    assert raytuner.open(experiment.folder).best() == experiment.best()  # the refit is not a trial of the search


def test_refit_of_an_inline_experiment_on_a_cluster_is_one_line(tmp_path: Path) -> None:
    experiment = _searched(tmp_path, "{x: 0.5, steps: 1}", "{algorithm: random, num_samples: 1}")
    result = CliRunner().invoke(app, ["refit", experiment.folder, "--address", "127.0.0.1:1"])
    assert result.exit_code == 2 and "execution.backend is inline" in result.output
    assert len(result.output.strip().splitlines()) == 1


REFIT_IN_BUCKET = """
import json, sys
import ray
import raytuner
from raytuner.execution.session import loopback_only

with loopback_only():
    ray.init(address="local", num_cpus=2, _node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": sys.argv[1]}})
experiment = raytuner.run(
    {
        "name": "own-s3",
        "storage": "s3://ownrefit/runs",
        "trainable": {"function": "own_refit_train:train"},
        "metric": "loss",
        "mode": "min",
        "space": {"x": {"uniform": [0.0, 1.0]}, "steps": 2},
        "search": {"algorithm": "random", "num_samples": 2, "seed": 2},
    },
    progress=False,
)
summary = experiment.refit(overrides=["space.steps=3"])
print(json.dumps({"best": experiment.best()[0].values["loss"], "location": summary.location, "test": summary.test}))
"""


@pytest.mark.ray
@pytest.mark.subprocess
def test_refit_of_own_code_in_a_bucket_keeps_its_checkpoint_and_row_there(s3_server: Any, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    import pyarrow.fs as pafs

    (tmp_path / "own_refit_train.py").write_text(TRAIN)
    s3 = s3_server.client()
    s3.create_dir("ownrefit")
    paths = os.pathsep.join([str(tmp_path), *sys.path])
    env = {**os.environ, **s3_server.env, "RAYTUNER_CACHE": str(tmp_path / "cache"), "PYTHONPATH": paths}
    done = subprocess.run(
        [sys.executable, "-c", REFIT_IN_BUCKET, paths], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=400
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    uri = "s3://ownrefit/runs/own-s3"
    assert result["location"] == uri + "/refit" and result["test"]["test_loss"] > 0
    assert s3.open_input_stream("ownrefit/runs/own-s3/refit/checkpoint/step.txt").read() == b"3"
    metrics = json.loads(s3.open_input_stream("ownrefit/runs/own-s3/refit/metrics.json").read())
    assert metrics["search"]["loss"] == result["best"] and metrics["refit"]["iterations"] == 3
    in_bucket = {info.base_name for info in s3.get_file_info(pafs.FileSelector("ownrefit/runs/own-s3/refit"))}
    assert in_bucket == {"checkpoint", "metrics.json", "own-s3-refit"}  # own-s3-refit: the refit trial's run
    with pytest.MonkeyPatch.context() as patch:
        for key, value in s3_server.env.items():
            patch.setenv(key, value)
        patch.setenv("RAYTUNER_CACHE", str(tmp_path / "reader-cache"))
        row = read_refit_row(Folder.parse(uri))
        copy = find_experiment(uri)  # a reader's working copy: refit/'s own files, not the run or checkpoint below
    assert row is not None and row.checkpoint == uri + "/refit/checkpoint" and row.epochs == 3
    assert [path.name for path in (copy / "refit").iterdir()] == ["metrics.json"]


def test_a_refit_that_fails_leaves_no_row_naming_the_model_it_removed(tmp_path: Path) -> None:
    """A second refit of own code removes ``refit/`` before its run; when the run failed, the
    first refit's row stayed in refit.parquet, naming a model (and scores) no longer there."""
    experiment = _searched(tmp_path, "{x: {uniform: [0, 1]}, steps: 2}", "{algorithm: random, num_samples: 2, seed: 1}")
    assert CliRunner().invoke(app, ["refit", experiment.folder]).exit_code == 0
    folder = Folder.local(Path(experiment.folder))
    assert read_refit_row(folder) is not None
    failed = CliRunner().invoke(app, ["refit", experiment.folder, "--set", "space.x=oops"])  # the trainable raises
    assert failed.exit_code == 1, failed.output
    row = read_refit_row(folder)
    assert row is None or (Path(experiment.folder) / "refit" / "metrics.json").is_file(), row
