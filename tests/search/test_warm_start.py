"""Warm start: experiment B's searcher learns experiment A's finished trials (real runs, real Parquet)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from raytuner.errors import Location, SpecError
from raytuner.results.records import TrialStatus
from raytuner.search.hyperopt import TpeSearcher
from raytuner.space.model import parse_space, render_path
from raytuner.spec.loader import load_experiment_text

SPACE = """
space:
  x1: {uniform: [-5, 10]}
  x2: {uniform: [0, 15]}
"""


def spec(name: str, storage: Path, search: str, space: str = SPACE, metric: str = "loss") -> str:
    return (
        f"name: {name}\ntrainable: {{builtin: analytic, objective: branin, iterations: 2}}\n"
        f"metric: {metric}\nmode: min\nsearch: {search}\nstorage: {storage}\n{space}"
    )


def run(text: str) -> Any:
    from raytuner.execution.events import Recorder
    from raytuner.execution.runner import RunOptions, RunState, run_experiment

    summary = run_experiment(load_experiment_text(text), RunOptions(), Recorder())
    assert summary.state is RunState.COMPLETED
    return summary


@pytest.fixture(scope="module")
def earlier(ray_session: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Experiment A: 8 random trials of Branin, finished; returns its storage root."""
    storage = tmp_path_factory.mktemp("warm") / "runs"
    run(spec("a", storage, "{algorithm: random, num_samples: 8, seed: 1}"))
    return storage


def saved_state(folder: Path) -> dict[str, Any]:
    # one file per session, named by its start time (mtimes are not ordered: Ray rewrites them together)
    newest = max(folder.glob("searcher-state-*.pkl"))
    return pickle.loads(newest.read_bytes())  # type: ignore[no-any-return]


@pytest.mark.ray
@pytest.mark.slow
def test_b_learns_a_and_records_only_its_own_trials_and_extending_keeps_it(earlier: Path) -> None:
    from raytuner.execution.events import Recorder
    from raytuner.execution.runner import RunOptions, extend_experiment

    a_trials = pq.read_table(earlier / "a" / "trials.parquet").to_pylist()
    assert len(a_trials) == 8
    warm = "{experiment: a}"
    summary = run(spec("b", earlier, f"{{algorithm: optuna_tpe, num_samples: 4, seed: 2, warm_start: {warm}}}"))
    study = saved_state(summary.folder)["study"]
    assert len(study.trials) == 8 + 4  # A's eight, told before B's first suggestion, then B's own
    told = {(t.params["x1"], t.params["x2"], t.value) for t in study.trials[:8]}
    assert told == {(r["config/x1"], r["config/x2"], r["metric_last"]) for r in a_trials}
    b_trials = pq.read_table(summary.folder / "trials.parquet").to_pylist()
    assert len(b_trials) == 4
    assert not {r["trial_id"] for r in b_trials} & {r["trial_id"] for r in a_trials}
    assert len({r["trial_id"] for r in pq.read_table(summary.folder / "results.parquet").to_pylist()}) == 4
    # a restored searcher (extend, like resume) goes on from the saved study: A's trials are not told twice
    extended = extend_experiment(summary.folder, 2, RunOptions(), Recorder())
    assert all(r.status is TrialStatus.COMPLETED for r in extended.book.trials.values())
    assert len(saved_state(summary.folder)["study"].trials) == 8 + 4 + 2


WARM, EXPERIMENT = "search.warm_start", "search.warm_start.experiment"


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize(
    ("search", "space", "metric", "message", "where"),
    [
        ("{algorithm: random, warm_start: {experiment: a}}", SPACE, "loss", "random search does not learn", WARM),
        ("{algorithm: hyperopt, warm_start: {experiment: nope}}", SPACE, "loss", "no experiment 'nope'", EXPERIMENT),
        (
            "{algorithm: hyperopt, warm_start: {experiment: a}}",
            SPACE,
            "acc",
            "a optimized loss (min), this experiment acc (min)",
            EXPERIMENT,
        ),
        (
            "{algorithm: hyperopt, warm_start: {experiment: a}}",
            "space:\n  x1: {uniform: [-5, 0]}\n  x2: {uniform: [0, 15]}\n",
            "loss",
            "parameter x1: expected a number in [-5, 0]",
            EXPERIMENT,
        ),
        (
            "{algorithm: hyperopt, warm_start: {experiment: a}}",
            SPACE + "  x3: {uniform: [0, 1]}\n",
            "loss",
            "missing x3",
            EXPERIMENT,
        ),
        (
            "{algorithm: hyperopt, warm_start: {experiment: a}}",
            "space:\n  x1: {uniform: [-5, 10]}\n",
            "loss",
            "'x2' is not a parameter of the space",
            EXPERIMENT,
        ),
    ],
    ids=["random", "missing", "metric", "range", "new-parameter", "dropped-parameter"],
)
def test_a_mismatch_is_one_line_naming_what(
    earlier: Path, search: str, space: str, metric: str, message: str, where: str
) -> None:
    with pytest.raises(SpecError) as info:
        load_experiment_text(spec("c", earlier, search, space, metric))
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert info.value.location is not None and info.value.location.path == where


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["hyperopt", "nevergrad_de", "bohb", "cmaes"])
def test_every_model_based_searcher_takes_the_priors(earlier: Path, algorithm: str) -> None:
    from raytuner.search import create_search

    if algorithm == "nevergrad_de":
        pytest.importorskip("nevergrad")
    scheduler = "scheduler: {type: hyperband, max_t: 2}\n" if algorithm == "bohb" else ""
    text = spec("d", earlier, f"{{algorithm: {algorithm}, seed: 0, warm_start: {{experiment: a, value: best}}}}") + scheduler
    searcher = create_search(load_experiment_text(text)).searcher
    told = {
        "hyperopt": lambda s: len(s._trials.trials),
        "nevergrad_de": lambda s: s.optimizer.num_tell,
        "bohb": lambda s: sum(len(v) for v in s.results.values()),
        "cmaes": lambda s: len(s.study.trials),
    }[algorithm](searcher)
    assert told == 8


def test_hyperopt_tpe_proposes_near_the_told_best() -> None:
    space = parse_space({"x": {"uniform": [0, 100]}}, lambda path: Location("t", None, render_path(path)))
    s = TpeSearcher(space, "loss", "min", n_initial_points=5, seed=0)
    for i in range(20):
        x = 5.0 * i
        s.add_evaluated({"x": x}, (x - 70.0) ** 2)
    near = [abs(s.suggest(f"t{i}")["x"] - 70.0) for i in range(10)]  # type: ignore[index]
    assert sorted(near)[5] < 15  # uniform draws: a median distance of about 30
