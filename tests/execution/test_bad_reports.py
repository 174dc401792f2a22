"""A report that cannot count for the spec's metric fails its trial, once another trial has
reported the metric; only a run in which none ever did stops and leaves nothing (the spec's
mistake: see test_failures.py and test_inline.py). On both backends."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from raytuner.execution.events import Recorder
from raytuner.execution.runner import RunOptions, RunState, run_experiment
from raytuner.spec.loader import load_experiment_text

pytestmark = pytest.mark.slow

# trials 0-5 report loss twice; 6 reports accuracy, 7 loss as a dict, 8 loss as text at its
# second report (tests/fixtures/user_trainables.py). Two at a time: trial 6 starts after five
# trials have ended. ASHA reads every report's loss: text would break its arithmetic.
SPEC = """
name: late-{backend}
trainable: {{function: "user_trainables:later_trial_misreports"}}
metric: loss
mode: min
space: {{x: {{grid: [0, 1, 2, 3, 4, 5, 6, 7, 8]}}}}
search: {{algorithm: grid, max_concurrent: 2}}
scheduler: {{type: asha, max_t: 2, grace_period: 2}}
execution: {{backend: {backend}}}
storage: {storage}
"""


@pytest.mark.parametrize("backend", [pytest.param("ray", marks=pytest.mark.ray), "inline"])
def test_a_later_trials_bad_report_fails_that_trial_and_keeps_the_rest(
    backend: str, storage: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "ray":
        request.getfixturevalue("ray_session")
    experiment = load_experiment_text(SPEC.format(backend=backend, storage=storage))
    summary = run_experiment(experiment, RunOptions(), Recorder())

    assert summary.state is RunState.COMPLETED
    assert summary.folder.is_dir()
    trials = {json.loads(row["config_json"])["x"]: row for row in pq.read_table(summary.folder / "trials.parquet").to_pylist()}
    assert {x: row["status"] for x, row in trials.items()} == {x: "completed" if x < 6 else "error" for x in range(9)}
    assert trials[6]["error"] == "reported accuracy; the spec's metric 'loss' is not among them"
    assert trials[7]["error"] == "reported loss as a mapping (loss/a); the spec's metric 'loss' must be a number"
    assert trials[8]["error"] == "reported loss = 'n/a' (str); the spec's metric 'loss' must be a number"
    assert summary.book.best is not None and summary.book.best.value == 0.0

    results = pq.read_table(summary.folder / "results.parquet")
    assert str(results.schema.field("loss").type) == "double"  # the text did not make the column text
    x_of = {row["trial_id"]: x for x, row in trials.items()}
    reports = sorted((x_of[r["trial_id"]], r["training_iteration"], r["loss"]) for r in results.to_pylist())
    good = [(x, step, float(x) if step == 1 else x / 2.0) for x in range(6) for step in (1, 2)]
    assert reports == [*good, (6, 1, None), (7, 1, None), (8, 1, 8.0), (8, 2, None)]
    by_trial = {x_of[r["trial_id"]]: r for r in results.to_pylist() if r["training_iteration"] == 1}
    assert by_trial[6]["accuracy"] == 0.5 and by_trial[7]["loss/a"] == 1.0


@pytest.mark.parametrize("backend", [pytest.param("ray", marks=pytest.mark.ray), "inline"])
def test_a_numpy_scalar_counts_as_the_number_it_holds(backend: str, storage: Path, request: pytest.FixtureRequest) -> None:
    """Ray Tune takes ``np.float32(0.5)`` for a number; raytuner stopped the run as if the
    metric were text (before: recorded it as no value, and no trial was best), and a stop
    threshold on such a metric was never reached."""
    if backend == "ray":
        request.getfixturevalue("ray_session")
    text = SPEC.format(backend=backend, storage=storage).replace("later_trial_misreports", "reports_numpy_scalars")
    text = text.replace("[0, 1, 2, 3, 4, 5, 6, 7, 8]", "[0, 1, 2]") + "stop: {metrics: {scores/top: {at_least: 4}}}\n"
    summary = run_experiment(load_experiment_text(text), RunOptions(), Recorder())

    assert summary.state is RunState.COMPLETED
    trials = pq.read_table(summary.folder / "trials.parquet").to_pylist()
    assert all(row["error"] is None for row in trials)
    assert sorted((json.loads(row["config_json"])["x"], row["iterations"]) for row in trials) == [(0, 2), (1, 2), (2, 1)]
    assert summary.book.best is not None and summary.book.best.value == 0.0
    results = pq.read_table(summary.folder / "results.parquet")
    assert str(results.schema.field("loss").type) == "double"
    x_of = {row["trial_id"]: json.loads(row["config_json"])["x"] for row in trials}
    reports = sorted((x_of[r["trial_id"]], r["training_iteration"], r["loss"], r["scores/top"]) for r in results.to_pylist())
    steps = [(0, 1), (0, 2), (1, 1), (1, 2), (2, 1)]  # x = 2 stops at its first report: scores/top = 4.0 (a 0-d array)
    assert reports == [(x, step, x + 0.5 if step == 1 else x, 2.0 * x if step == 1 else x) for x, step in steps]
