"""A trial a scheduler ended is "stopped", one that ran its course "completed": every scheduler."""

from __future__ import annotations

from pathlib import Path

import pytest

from raytuner.execution.events import Recorder
from raytuner.execution.runner import RunOptions, RunState, run_experiment
from raytuner.results.records import TrialStatus
from raytuner.spec.loader import load_experiment_text
from raytuner.spec.models import SchedulerType

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ITERATIONS = 9
SCHEDULERS = {
    "asha": "{type: asha, max_t: 9, grace_period: 1, reduction_factor: 3}",
    "hyperband": "{type: hyperband, max_t: 9, reduction_factor: 3}",
    "bohb": "{type: hyperband, max_t: 9, reduction_factor: 3}",
    "median": "{type: median, grace_period: 1, min_samples_required: 2}",
    "pbt": "{type: pbt, perturbation_interval: 3, hyperparam_mutations: {x1: {uniform: [-5, 10]}}}",
    "pb2": "{type: pb2, perturbation_interval: 3, hyperparam_bounds: {x1: [-5, 10]}}",
}


# every scheduler of the registry but FIFO, which ends no trial, and HyperBand's BOHB variant (the
# bohb searcher's scheduler): a scheduler added to the registry fails here until it has a spec above
ENDING = [kind.value for kind in SchedulerType if kind is not SchedulerType.FIFO] + ["bohb"]


@pytest.mark.parametrize("scheduler", ENDING)
def test_the_label_says_who_ended_the_trial(ray_session: None, tmp_path: Path, scheduler: str) -> None:
    algorithm = "bohb" if scheduler == "bohb" else "random"
    text = f"""
name: labels-{scheduler}
trainable: {{builtin: analytic, objective: branin, iterations: {ITERATIONS}}}
metric: loss
mode: min
space: {{x1: {{uniform: [-5, 10]}}, x2: {{uniform: [0, 15]}}}}
search: {{algorithm: {algorithm}, num_samples: 9, seed: 3}}
scheduler: {SCHEDULERS[scheduler]}
checkpoint: {{every: 3}}
storage: {tmp_path}
"""
    summary = run_experiment(load_experiment_text(text), RunOptions(), Recorder())
    assert summary.state is RunState.COMPLETED
    trials = summary.trials.values()
    labels = {(r.trial_id, r.iterations): r.status for r in trials}
    expected = {
        (r.trial_id, r.iterations): TrialStatus.COMPLETED if r.iterations == ITERATIONS else TrialStatus.STOPPED
        for r in trials
    }
    assert labels == expected
    if scheduler not in ("pbt", "pb2"):  # population schedulers never end a trial
        assert TrialStatus.STOPPED in labels.values(), labels


def test_a_median_stop_on_a_trials_last_report_is_no_early_stop(tmp_path: Path) -> None:
    """The median rule has no max_t: it says STOP on a poor trial's last report too, and those
    trials, which had run their course, were labelled ``stopped`` (4 of 10 here)."""
    text = f"""
name: median-last
trainable: {{builtin: analytic, iterations: 4}}
metric: loss
mode: min
space: {{x: {{uniform: [-1, 1]}}}}
search: {{algorithm: random, num_samples: 10, seed: 1, max_concurrent: 1}}
scheduler: {{type: median, grace_period: 4, min_samples_required: 2}}
execution: {{backend: inline}}
storage: {tmp_path}
"""
    summary = run_experiment(load_experiment_text(text), RunOptions(), Recorder())
    assert {(r.status, r.iterations) for r in summary.trials.values()} == {(TrialStatus.COMPLETED, 4)}
