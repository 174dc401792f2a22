"""The algorithm a spec gets when ``search`` names none: auto, random where a model cannot serve."""

from __future__ import annotations

import pytest

from raytuner.search import create_search
from raytuner.spec.loader import load_experiment_text
from raytuner.spec.models import DEFAULT_ALGORITHM, Algorithm

BASE = "name: t\ntrainable: {builtin: analytic}\nmetric: loss\nmode: min\n"


@pytest.mark.parametrize(
    ("rest", "expected"),
    [
        ("space: {x: {uniform: [0, 1]}}\n", Algorithm.AUTO),
        ("space: {x: {uniform: [0, 1]}}\nsearch: {num_samples: 4, seed: 1}\n", Algorithm.AUTO),
        ("space: {x: {uniform: [0, 1]}, b: {grid: [1, 2]}}\n", Algorithm.RANDOM),  # grid nodes are enumerated
        ("space: {x: {uniform: [0, 1]}, c: {constant: {grid: [1, 2]}}}\n", Algorithm.AUTO),  # a constant
        ("space: {x: 1, y: [1, 2]}\n", Algorithm.RANDOM),  # constants only: nothing to model
        ("space: {x: {uniform: [0, 1]}}\nsearch: {algorithm: hyperopt}\n", Algorithm.HYPEROPT),
    ],
    ids=["no-search", "search-without-algorithm", "grid", "constant-grid", "constants-only", "explicit"],
)
def test_the_default_and_where_random_stays(rest: str, expected: Algorithm) -> None:
    experiment = load_experiment_text(BASE + rest)
    assert experiment.spec.search.algorithm is expected
    assert experiment.resolved()["search"]["algorithm"] == expected.value


def test_pbt_without_an_algorithm_gets_random_search() -> None:
    text = BASE + (
        "space: {x: {uniform: [0, 1]}}\n"
        "scheduler: {type: pbt, perturbation_interval: 2, hyperparam_mutations: {x: {uniform: [0, 1]}}}\n"
        "checkpoint: {every: 2}\n"
    )
    assert load_experiment_text(text).spec.search.algorithm is Algorithm.RANDOM


def test_the_default_builds_a_seeded_auto_searcher() -> None:
    assert DEFAULT_ALGORITHM is Algorithm.AUTO
    experiment = load_experiment_text(BASE + "space: {x: {uniform: [0, 1]}}\nsearch: {seed: 3}\n")
    searcher = create_search(experiment).searcher
    first = searcher.suggest("a")
    again = create_search(experiment).searcher.suggest("a")
    assert type(searcher).__name__ == "AutoSearcher" and first == again
