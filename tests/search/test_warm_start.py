"""Warm start: experiment B's searcher learns experiment A's finished trials (real runs, real Parquet)."""

from __future__ import annotations

import json
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


def run(text: str, recorder: Any = None) -> Any:
    from raytuner.execution.events import Recorder
    from raytuner.execution.runner import RunOptions, RunState, run_experiment

    summary = run_experiment(load_experiment_text(text), RunOptions(), recorder or Recorder())
    assert summary.state is RunState.COMPLETED
    return summary


def started(recorder: Any) -> dict[str, Any]:
    from raytuner.execution.events import EventKind

    return next(e.data for e in recorder.events if e.kind is EventKind.EXPERIMENT_STARTED)  # type: ignore[no-any-return]


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
    recorder = Recorder()
    summary = run(spec("b", earlier, f"{{algorithm: optuna_tpe, num_samples: 4, seed: 2, warm_start: {warm}}}"), recorder)
    told = started(recorder)["warm_start"]
    line = "warm start: the searcher was told 8 finished trials of experiment 'a'"
    assert told == {"experiment": "a", "trials": 8, "line": line}
    study = saved_state(summary.folder)["study"]
    assert len(study.trials) == 8 + 4  # A's eight, told before B's first suggestion, then B's own
    told = {(t.params["x1"], t.params["x2"], t.value) for t in study.trials[:8]}
    assert told == {(r["config/x1"], r["config/x2"], r["metric_last"]) for r in a_trials}
    b_trials = pq.read_table(summary.folder / "trials.parquet").to_pylist()
    assert len(b_trials) == 4
    assert not {r["trial_id"] for r in b_trials} & {r["trial_id"] for r in a_trials}
    assert len({r["trial_id"] for r in pq.read_table(summary.folder / "results.parquet").to_pylist()}) == 4
    # a restored searcher (extend, like resume) goes on from the saved study: A's trials are not told twice
    again = Recorder()
    extended = extend_experiment(summary.folder, 2, RunOptions(), again)
    assert started(again)["warm_start"] is None  # the restored study already holds them: nothing told again
    assert all(r.status is TrialStatus.COMPLETED for r in extended.trials.values())
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


# ------------------------------------------------------------------ several metrics (no Ray: raytuner's store writes A)

ZDT1 = (("f1", "min"), ("f2", "min"))


def two_metric_experiment(folder: Path, objectives: tuple[tuple[str, str], ...] = ZDT1) -> Path:
    """Experiment A on ZDT1 written by raytuner's results store: 5 completed, 1 stopped, 1 failed trial."""
    import numpy as np

    from raytuner.results.records import ExperimentBook, TrialRecord
    from raytuner.results.store import ResultsStore

    folder.mkdir(parents=True)
    (folder / "spec.yaml").write_text("name: a\n")  # what marks a folder as an experiment
    book = ExperimentBook(objectives[0][0], -1.0 if objectives[0][1] == "min" else 1.0, objectives=objectives)
    store = ResultsStore(folder, book, {})
    rng = np.random.default_rng(0)
    for i in range(7):
        x1, x2 = (float(v) for v in rng.uniform(0, 1, 2))
        record = TrialRecord(f"a_{i:05d}", {"x1": x1, "x2": x2})
        record.status = {5: TrialStatus.STOPPED, 6: TrialStatus.ERROR}.get(i, TrialStatus.COMPLETED)
        for step in (1, 2):
            metrics = {"f1": x1 + 0.5 / step, "f2": 1 - x1**0.5 + x2 + 0.5 / step}
            record.observe(book.metric, book.sign, metrics, step)
            store.add_result(record.trial_id, {"training_iteration": step, "time_total_s": float(step)}, metrics)
        record.iterations = 2
        book.trials[record.trial_id] = record
    store.finalize()
    return folder


def two_metric_spec(folder: Path, algorithm: str, metric: str = "[f1, f2]", mode: str = "[min, min]", value: str = "last") -> str:
    return (
        f"name: b\ntrainable: {{builtin: analytic, objective: zdt1, iterations: 2}}\nmetric: {metric}\nmode: {mode}\n"
        f"search: {{algorithm: {algorithm}, seed: 0, warm_start: {{experiment: {folder}, value: {value}}}}}\n"
        f"space: {{x1: {{uniform: [0, 1]}}, x2: {{uniform: [0, 1]}}}}\nstorage: {folder.parent / 'runs'}\n"
    )


@pytest.mark.parametrize(
    ("algorithm", "metric", "mode"),
    [
        ("optuna_tpe", "[f1, f2]", "[min, min]"),
        ("nsga2", "[f1, f2]", "min"),
        ("gp", "[f1, f2]", "min"),
        ("optuna_tpe", "[f2, f1]", "min"),
    ],
    ids=["optuna_tpe", "nsga2", "gp", "reordered"],
)
def test_a_multi_objective_searcher_is_told_every_metric_of_the_earlier_trials(
    tmp_path: Path, algorithm: str, metric: str, mode: str
) -> None:
    from raytuner.search import create_search

    folder = two_metric_experiment(tmp_path / "a")
    rows = pq.read_table(folder / "trials.parquet").to_pylist()
    experiment = load_experiment_text(two_metric_spec(folder, algorithm, metric, mode))
    study = create_search(experiment).searcher.study
    names = [o.metric for o in experiment.spec.objectives]
    told = [(t.params["x1"], t.params["x2"], *t.values) for t in study.trials]
    finished = [r for r in rows if r["status"] in ("completed", "stopped")]
    assert len(finished) == 6
    configs = [json.loads(r["config_json"]) for r in finished]
    assert told == [(c["x1"], c["x2"], *(r[f"last/{name}"] for name in names)) for c, r in zip(configs, finished, strict=True)]
    assert all(t.values[0] != t.values[1] for t in study.trials)  # two distinct metrics, not one told twice
    assert [d.name for d in study.directions] == ["MINIMIZE", "MINIMIZE"]


@pytest.mark.parametrize(
    ("metric", "mode", "value", "message", "where"),
    [
        ("[f1, f2]", "[min, max]", "last", "a optimized f1 (min), f2 (min), this experiment f1 (min), f2 (max)", EXPERIMENT),
        ("[f1, f3]", "min", "last", "a optimized f1 (min), f2 (min), this experiment f1 (min), f3 (min)", EXPERIMENT),
        ("f1", "min", "last", "a optimized f1 (min), f2 (min), this experiment f1 (min)", EXPERIMENT),
        ("[f1, f2]", "min", "best", "value: best takes one metric", "search.warm_start.value"),
    ],
    ids=["mode", "metric", "one-metric", "best"],
)
def test_a_multi_objective_mismatch_is_one_line_naming_what(
    tmp_path: Path, metric: str, mode: str, value: str, message: str, where: str
) -> None:
    folder = two_metric_experiment(tmp_path / "a")
    with pytest.raises(SpecError) as info:
        load_experiment_text(two_metric_spec(folder, "optuna_tpe", metric, mode, value))
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert info.value.location is not None and info.value.location.path == where
