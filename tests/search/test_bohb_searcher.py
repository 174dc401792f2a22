"""BOHB: a TPE model of the largest budget with enough results, with HyperBand; in-process and on Ray."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from raytuner.errors import Location, SpecError
from raytuner.results.records import TrialStatus
from raytuner.search.bohb import BohbSearcher, parameter_count
from raytuner.space.model import Space, parse_space, render_path
from raytuner.space.points import complete_point
from raytuner.spec.loader import load_experiment_text

FLAT = {"x": {"uniform": [0, 1]}, "y": {"uniform": [0, 1]}}
CONDITIONAL = {
    "x": {"uniform": [0, 1]},
    "opt": {"choice": [{"name": "sgd", "momentum": {"uniform": [0.8, 0.99]}}, {"name": "adam"}]},
    "act": {"choice": ["relu", "tanh"]},
}


def parse(raw: dict[str, Any]) -> Space:
    return parse_space(raw, lambda path: Location("test", None, render_path(path)))


def report(s: BohbSearcher, trial_id: str, budget: int, loss: float) -> None:
    s.on_trial_result(trial_id, {"loss": loss, "training_iteration": budget})


def test_the_model_uses_the_largest_budget_with_enough_results() -> None:
    space = parse(FLAT)
    assert parameter_count(space) == 2
    s = BohbSearcher(space, "loss", "min", min_points_in_model=2, seed=0)  # a budget needs 2 + 2 results
    assert s.model_budget() is None
    for i in range(6):
        s.suggest(f"t{i}")
        report(s, f"t{i}", 1, float(i))
        if i < 3:
            report(s, f"t{i}", 3, float(i))
    assert s.model_budget() == 1  # budget 3 has 3 results, budget 1 has 6
    s.suggest("t6")
    report(s, "t6", 1, 0.5)
    report(s, "t6", 3, 0.5)
    assert s.model_budget() == 3
    s.on_trial_complete("t6", {"loss": 0.1, "training_iteration": 9}, error=False)
    assert s.results[9] == {"t6": 0.1}


def test_failed_results_are_not_recorded_and_max_mode_negates() -> None:
    s = BohbSearcher(parse(FLAT), "acc", "max", seed=0)
    s.suggest("a")
    s.on_trial_result("a", {"acc": 0.7, "training_iteration": 1})
    s.on_trial_result("a", {"acc": float("nan"), "training_iteration": 2})
    s.on_trial_complete("a", {"acc": 0.9, "training_iteration": 3}, error=True)
    assert s.results == {1.0: {"a": -0.7}}


def near_optimum(random_fraction: float) -> int:
    """Of 40 suggestions after 30 results at budget 1, how many land within 0.2 of the optimum."""
    space = parse(FLAT)
    s = BohbSearcher(space, "loss", "min", random_fraction=random_fraction, seed=3)
    for i in range(30):
        config = s.suggest(f"t{i}")
        assert config is not None
        report(s, f"t{i}", 1, (config["x"] - 0.2) ** 2 + (config["y"] - 0.7) ** 2)
        s.on_trial_complete(f"t{i}")
    late = [s.suggest(f"late{i}") for i in range(40)]
    return sum(bool(np.hypot(c["x"] - 0.2, c["y"] - 0.7) < 0.2) for c in late if c is not None)


def test_model_suggestions_concentrate_where_the_low_budget_results_are_good() -> None:
    # all-random draws put about 13% of 40 there (a disc of radius 0.2 in the unit square)
    assert near_optimum(0.0) >= 2 * near_optimum(1.0)


def test_conditional_spaces_seeds_and_points() -> None:
    space = parse(CONDITIONAL)

    def run(seed: int) -> list[dict[str, Any]]:
        s = BohbSearcher(space, "loss", "min", seed=seed, points=[{"x": 0.25}])
        configs = []
        for i in range(25):
            config = s.suggest(f"t{i}")
            assert config is not None
            assert complete_point(space, config, np.random.default_rng(0)) == config
            configs.append(config)
            report(s, f"t{i}", 1, config["x"] + (config["opt"]["name"] == "adam"))
        return configs

    first = run(1)
    assert first[0]["x"] == 0.25
    assert run(1) == first
    assert run(2) != first
    assert {c["opt"]["name"] for c in first} == {"sgd", "adam"}


def test_state_round_trip_continues_identically(tmp_path: Path) -> None:
    space = parse(CONDITIONAL)
    s = BohbSearcher(space, "loss", "min", seed=4)
    for i in range(12):
        config = s.suggest(f"t{i}")
        assert config is not None
        report(s, f"t{i}", 1, config["x"])
    s.save(str(tmp_path / "state.pkl"))
    restored = BohbSearcher(space, "loss", "min", seed=99)
    restored.restore(str(tmp_path / "state.pkl"))
    assert [restored.suggest(f"n{i}") for i in range(3)] == [s.suggest(f"n{i}") for i in range(3)]


SPEC = """
name: b
trainable: {{builtin: analytic, objective: branin, iterations: 9}}
metric: loss
mode: min
search: {{algorithm: bohb, num_samples: 12, seed: 1, min_points_in_model: 2}}
scheduler: {scheduler}
space:
  x1: {{uniform: [-5, 10]}}
  x2: {{uniform: [0, 15]}}
"""


def test_bohb_without_hyperband_is_refused_at_the_scheduler() -> None:
    with pytest.raises(SpecError) as info:
        load_experiment_text(SPEC.format(scheduler="{type: asha, max_t: 9}"))
    assert "bohb runs its model with HyperBand" in str(info.value)
    assert "found scheduler asha" in str(info.value)
    assert info.value.location is not None and info.value.location.path == "scheduler.type"


@pytest.mark.ray
@pytest.mark.slow
def test_a_real_run_with_hyperband_feeds_the_model_every_budget(ray_session: None, storage: Path) -> None:
    from raytuner.execution.events import Recorder
    from raytuner.execution.runner import RunOptions, RunState, run_experiment

    text = SPEC.format(scheduler="{type: hyperband, max_t: 9, reduction_factor: 3}") + f"storage: {storage}\n"
    experiment = load_experiment_text(text)
    summary = run_experiment(experiment, RunOptions(), Recorder())
    assert summary.state is RunState.COMPLETED
    records = list(summary.trials.values())
    assert len(records) == 12
    assert all(r.status in (TrialStatus.COMPLETED, TrialStatus.STOPPED) for r in records)
    assert any(r.status is TrialStatus.STOPPED for r in records)  # HyperBand stopped some early
    (state_file,) = summary.folder.glob("searcher-state-*.pkl")
    state = pickle.loads(state_file.read_bytes())
    assert len(state["results"][1.0]) == 12  # every trial's first report
    assert max(state["results"]) == 9.0 and len(state["results"][9.0]) < 12
