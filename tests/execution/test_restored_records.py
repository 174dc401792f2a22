"""A resume's trial records agree with the trials Ray restores (Ray backend, in-process)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from raytuner.execution.events import Recorder
from raytuner.execution.runner import RunOptions, RunState, resume_experiment, run_experiment
from raytuner.spec.loader import load_experiment_text

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SPEC = """
name: behind
trainable: {builtin: analytic, iterations: 4}
metric: loss
mode: min
space: {x: {uniform: [-1, 1]}}
search: {algorithm: random, num_samples: 2, seed: 1}
checkpoint: {every: 1}
"""


def test_a_trial_ray_saved_unfinished_but_the_tables_hold_finished_keeps_its_row(ray_session: None, storage: Path) -> None:
    """raytuner flushes its tables before Ray saves its state, so a kill or a full disk can leave
    a trial the tables hold finished that Ray's older save restores running: it runs again from
    its last checkpoint and reports nothing new; its row must stay whole and count once."""
    experiment = load_experiment_text(SPEC + f"\nstorage: {storage}\n")
    summary = run_experiment(experiment, RunOptions(), Recorder())
    state_file = sorted(summary.folder.glob("experiment_state-*.json"))[-1]
    state = json.loads(state_file.read_text())
    first = json.loads(state["trial_data"][0][0])
    first["status"] = "RUNNING"  # as Ray's last save before the trial's end left it
    state["trial_data"][0][0] = json.dumps(first)
    state_file.write_text(json.dumps(state))
    before = pq.read_table(summary.folder / "trials.parquet").to_pylist()

    resumed = resume_experiment(summary.folder, RunOptions(), Recorder())
    assert resumed.state is RunState.COMPLETED
    rows = pq.read_table(summary.folder / "trials.parquet").to_pylist()
    keys = ("trial_id", "status", "iterations", "metric_best", "metric_best_iteration")
    assert [{k: r[k] for k in keys} for r in rows] == [{k: r[k] for k in keys} for r in before]
    counts = json.loads((summary.folder / "status.json").read_text())["trials"]
    assert counts["completed"] == 2 and sum(counts.values()) == 2, counts
