"""TpeSearcher driven directly (no Ray cluster): beats random search, honours points, resumes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from raytuner.errors import Location
from raytuner.search.hyperopt import TpeSearcher
from raytuner.search.sampler import SpaceSearcher
from raytuner.space.model import Space, parse_space, render_path

RAW = {
    "opt": {
        "choice": [
            {"name": "good", "x": {"uniform": [-5, 5]}, "y": {"uniform": [-5, 5]}},
            {"name": "bad", "z": {"uniform": [-5, 5]}},
        ]
    },
    "w": {"uniform": [-5, 5]},
}


def space() -> Space:
    return parse_space(RAW, lambda path: Location("test", None, render_path(path)))


def objective(config: dict[str, Any]) -> float:
    """Minimum 0 in the 'good' branch at x=1, y=-2, w=0; the 'bad' branch never goes below 5."""
    opt = config["opt"]
    base = config["w"] ** 2
    if opt["name"] == "good":
        return base + (opt["x"] - 1) ** 2 + (opt["y"] + 2) ** 2
    return base + 5 + opt["z"] ** 2


def run(searcher: Any, n: int) -> float:
    best = float("inf")
    for i in range(n):
        config = searcher.suggest(f"t{i}")
        value = objective(config)
        best = min(best, value)
        searcher.on_trial_complete(f"t{i}", {"loss": value})
    return best


def test_tpe_beats_median_random_search() -> None:
    tpe, rnd = [], []
    for seed in (0, 1, 2):
        tpe.append(run(TpeSearcher(space(), "loss", "min", n_initial_points=10, seed=seed), 60))
        rnd.append(run(SpaceSearcher(space(), "loss", "min", total=60, enumerate_choices=False, seed=seed), 60))
    assert float(np.median(tpe)) < float(np.median(rnd))
    assert sum(t < r for t, r in zip(tpe, rnd, strict=True)) >= 2


def test_tpe_max_mode_negates_the_metric_for_hyperopt() -> None:
    searcher = TpeSearcher(space(), "score", "max", n_initial_points=5, seed=0)
    scores = []
    for i in range(8):
        config = searcher.suggest(f"t{i}")
        scores.append(-objective(config))
        searcher.on_trial_complete(f"t{i}", {"score": scores[-1]})
    assert [t["result"]["loss"] for t in searcher._trials.trials] == [-s for s in scores]


def test_points_to_evaluate_first_and_exact() -> None:
    points = [
        {"opt": {"name": "bad", "z": 0.25}, "w": 1.5},
        {"opt": {"name": "good", "x": 1.0, "y": -2.0}, "w": 0.0},
    ]
    searcher = TpeSearcher(space(), "loss", "min", n_initial_points=2, points=points, seed=0)
    first = searcher.suggest("a")
    searcher.on_trial_complete("a", {"loss": objective(first)})
    second = searcher.suggest("b")
    searcher.on_trial_complete("b", {"loss": objective(second)})
    assert [first, second] == points
    third = searcher.suggest("c")
    assert third not in points
    assert set(third) == {"opt", "w"}


def test_partial_point_is_completed() -> None:
    searcher = TpeSearcher(space(), "loss", "min", points=[{"opt": {"name": "good"}}], seed=0)
    config = searcher.suggest("a")
    assert config["opt"]["name"] == "good" and set(config["opt"]) == {"name", "x", "y"}
    assert -5 <= config["w"] <= 5


def test_failed_trials_are_not_learned_from() -> None:
    searcher = TpeSearcher(space(), "loss", "min", n_initial_points=2, seed=0)
    for i in range(6):
        searcher.suggest(f"t{i}")
        searcher.on_trial_complete(f"t{i}", None, error=True)
    documents = searcher._trials._dynamic_trials
    assert len(documents) == 6 and all(t["result"]["status"] == "fail" for t in documents)
    assert searcher._trials.trials == []  # none of them is a point TPE learns from
    searcher.suggest("after")  # still suggests after only failures
    searcher.on_trial_complete("unknown")  # unknown ids are ignored


def test_diverged_values_are_failures_not_the_best_points() -> None:
    """An infinite or NaN loss (a diverged run) must not become TPE's best (below-gamma) group."""
    searcher = TpeSearcher(space(), "score", "max", n_initial_points=2, seed=0)
    reports = [float("inf"), float("nan"), float("-inf"), True, 3.0]
    for i, value in enumerate(reports):
        searcher.suggest(f"t{i}")
        searcher.on_trial_complete(f"t{i}", {"score": value})
    documents = searcher._trials._dynamic_trials
    assert [t["result"]["status"] for t in documents] == ["fail"] * 4 + ["ok"]
    assert [t["result"]["loss"] for t in searcher._trials.trials] == [-3.0]  # the only point TPE learns from


def test_save_restore_continues_identically(tmp_path: Path) -> None:
    searcher = TpeSearcher(space(), "loss", "min", n_initial_points=5, seed=3)
    run(searcher, 12)
    checkpoint = tmp_path / "tpe.pkl"
    searcher.save(str(checkpoint))
    original = [searcher.suggest(f"x{i}") for i in range(5)]

    restored = TpeSearcher(space(), "loss", "min", n_initial_points=5, seed=999)
    restored.restore(str(checkpoint))
    again = [restored.suggest(f"x{i}") for i in range(5)]
    assert again == original


def test_random_searcher_save_restore(tmp_path: Path) -> None:
    searcher = SpaceSearcher(space(), "loss", "min", total=10, enumerate_choices=False, seed=1)
    run(searcher, 4)
    searcher.save(str(tmp_path / "s.pkl"))
    original = [searcher.suggest(f"x{i}") for i in range(3)]
    restored = SpaceSearcher(space(), "loss", "min", total=10, enumerate_choices=False, seed=2)
    restored.restore(str(tmp_path / "s.pkl"))
    assert [restored.suggest(f"x{i}") for i in range(3)] == original
    for i in range(3):
        restored.suggest(f"y{i}")
    assert restored.suggest("done") == SpaceSearcher.FINISHED
