"""``raytuner extend``: more trials in a finished experiment's folder, the searcher going on."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from raytuner.cli import app
from raytuner.execution.events import Recorder
from raytuner.execution.runner import RunOptions, RunState, run_experiment
from raytuner.spec.loader import load_experiment_text

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SPEC = """
name: grow
trainable: {builtin: analytic, iterations: 3}
metric: loss
mode: min
space: {x: {uniform: [-1, 1]}}
search: {algorithm: hyperopt, num_samples: 4, n_initial_points: 2, seed: 3}
"""


def test_extend_adds_trials_and_keeps_every_earlier_row(ray_session: None, storage: Path) -> None:
    first = run_experiment(load_experiment_text(SPEC + f"\nstorage: {storage}\n"), RunOptions(), Recorder())
    assert first.state is RunState.COMPLETED
    folder = first.folder
    trials_before = pq.read_table(folder / "trials.parquet").to_pandas().set_index("trial_id")
    results_before = pq.read_table(folder / "results.parquet").to_pandas()
    assert len(trials_before) == 4 and len(results_before) == 12

    done = CliRunner().invoke(app, ["extend", "grow", "--num-samples", "3", "--storage", str(storage), "--json"])
    assert done.exit_code == 0, done.output[-2000:]
    events = [json.loads(line) for line in done.output.splitlines() if line.startswith("{")]
    started = {e["trial_id"] for e in events if e["event"] == "trial_started"}
    assert len(started) == 3 and not started & set(trials_before.index)  # nothing earlier ran again
    assert events[-1]["event"] == "experiment_finished" and events[-1]["state"] == "completed"

    trials = pq.read_table(folder / "trials.parquet").to_pandas().set_index("trial_id")
    assert len(trials) == 7 and set(trials["status"]) == {"completed"}
    assert set(trials.index) == set(trials_before.index) | started
    kept = trials.loc[trials_before.index, ["config_json", "metric_best", "iterations", "status"]]
    assert kept.equals(trials_before[["config_json", "metric_best", "iterations", "status"]])
    results = pq.read_table(folder / "results.parquet").to_pandas()
    assert len(results) == 21
    old = results[results["trial_id"].isin(trials_before.index)].sort_values(["trial_id", "training_iteration"])
    expected = results_before.sort_values(["trial_id", "training_iteration"])
    assert old["loss"].tolist() == expected["loss"].tolist()

    assert yaml.safe_load((folder / "spec.yaml").read_text())["search"]["num_samples"] == 7
    status = json.loads((folder / "status.json").read_text())
    assert status["state"] == "completed" and status["trials"]["completed"] == 7
    # The restored TPE went on: its history holds all seven trials, not just the new three.
    newest = max(folder.glob("searcher-state-*.pkl"))  # Ray names them by session start, newest last
    state = pickle.loads(newest.read_bytes())
    assert len(state["trials"].trials) == 7


def test_extend_refuses_what_it_cannot_extend(tmp_path: Path) -> None:
    folder = tmp_path / "runs" / "grid"
    folder.mkdir(parents=True)
    (folder / "spec.yaml").write_text(
        "name: grid\ntrainable: {builtin: analytic}\nmetric: loss\nmode: min\n"
        "space: {x: {grid: [1, 2]}}\nsearch: {algorithm: grid}\n"
    )
    (folder / "status.json").write_text(json.dumps({"state": "completed"}))
    runner = CliRunner()
    done = runner.invoke(app, ["extend", "grid", "-n", "2", "--storage", str(tmp_path / "runs")])
    assert done.exit_code == 2 and "grid search has a fixed set of trials" in done.output
    (folder / "status.json").write_text(json.dumps({"state": "interrupted"}))
    done = runner.invoke(app, ["extend", "grid", "-n", "2", "--storage", str(tmp_path / "runs")])
    assert done.exit_code == 2 and "interrupted, not completed" in done.output
