"""What ``raytuner validate`` says about a spec's search before anything runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from raytuner.cli import app
from raytuner.search.preview import budget
from raytuner.spec.loader import load_experiment_text

BASE = """\
name: n
trainable: {builtin: analytic, objective: zdt1}
metric: [f1, f2]
mode: min
space: {x1: {uniform: [0, 1]}, x2: {uniform: [0, 1]}}
"""


def nsga2_notes(search: str) -> list[str]:
    notes = budget(load_experiment_text(BASE + f"search: {search}\n")).notes
    return [note for note in notes if note.startswith("nsga2")]


@pytest.mark.parametrize(
    ("search", "words"),
    [
        (  # the defaults: 16 trials, a population of 50
            "{algorithm: nsga2}",
            [
                "nsga2 runs 16 trials with population_size 50",
                "every trial is random search",
                "num_samples to at least 100",
                "population_size to at most 8",
            ],
        ),
        (
            "{algorithm: nsga2, num_samples: 30, population_size: 20}",
            ["30 trials with population_size 20", "only 10 are bred", "at least 40", "at most 15"],
        ),
    ],
    ids=["defaults", "one-and-a-half-generations"],
)
def test_nsga2_with_under_two_generations_gets_a_note(search: str, words: list[str]) -> None:
    (note,) = nsga2_notes(search)
    for word in words:
        assert word in note, note


@pytest.mark.parametrize("search", ["{algorithm: nsga2, num_samples: 40, population_size: 20}", "{algorithm: optuna_tpe}"])
def test_enough_generations_or_another_searcher_get_no_note(search: str) -> None:
    assert nsga2_notes(search) == []


def test_validate_prints_the_note(tmp_path: Path) -> None:
    path = tmp_path / "n.yaml"
    path.write_text(BASE + "search: {algorithm: nsga2, num_samples: 12, population_size: 10}\n")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "note: nsga2 runs 12 trials with population_size 10" in result.output
    as_json = CliRunner().invoke(app, ["validate", str(path), "--json"])
    assert any("only 2 are bred" in note for note in json.loads(as_json.output)["notes"])


def test_validate_notes_a_nested_constant_shaped_like_a_distribution(tmp_path: Path) -> None:
    path = tmp_path / "n.yaml"
    path.write_text(BASE.replace("x2: {uniform: [0, 1]}", "x2: {uniform: [0, 1]}, x3: {beta: [1, 2]}, x4: [1, 2]"))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "note: space.x3: {beta: [1, 2]} is a constant, the same in every trial" in result.output
    assert "space.x4" not in result.output  # a plain list parameter is no lookalike


@pytest.mark.parametrize(
    ("algorithm", "num_samples", "expected"),
    [
        ("optuna_tpe", 2, 3),  # more points than num_samples: every point runs
        ("optuna_tpe", 5, 5),  # the points are among the num_samples trials
        ("hyperopt", 2, 3),
        ("nsga2", 5, 5),
        ("random", 2, 3),
        ("grid", 2, 3 + 2 * 2),  # the points, then the grid (2 choices) twice
    ],
)
def test_points_count_towards_num_samples_except_with_grid(algorithm: str, num_samples: int, expected: int) -> None:
    text = (
        "name: p\ntrainable: {builtin: analytic}\nmetric: loss\nmode: min\n"
        "space: {x: {uniform: [0, 1]}, act: {choice: [relu, tanh]}}\n"
        f"search: {{algorithm: {algorithm}, num_samples: {num_samples}, "
        "points_to_evaluate: [{x: 0.1}, {x: 0.2}, {x: 0.3}]}\n"
    )
    assert budget(load_experiment_text(text)).trials == expected
