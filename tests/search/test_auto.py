"""``search.algorithm: auto``: the decision table, the switch from gp to optuna_tpe that keeps
what was learned, decisions recorded and replayed on restore, and seeded runs that repeat."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from raytuner.execution.events import EventKind, Recorder
from raytuner.execution.runner import RunOptions, RunState, extend_experiment, run_experiment
from raytuner.results import layout
from raytuner.results.search_decisions import read_decisions, record
from raytuner.search import MULTI_OBJECTIVE, create_search
from raytuner.search.auto import AutoSearcher, choose
from raytuner.spec.loader import load_experiment_text
from raytuner.spec.models import Algorithm

BASE = "name: t\ntrainable: {builtin: analytic}\nmetric: loss\nmode: min\n"
NUMERIC = "space: {x: {uniform: [0, 1]}, y: {loguniform: [0.001, 1]}, n: {randint: [1, 8]}}\n"
BRANCHES = "space: {x: {uniform: [0, 1]}, opt: {choice: [{name: sgd, m: {uniform: [0, 1]}}, {name: adam}]}}\n"
WIDE = "space: {" + ", ".join(f"x{i}: {{uniform: [0, 1]}}" for i in range(25)) + "}\n"
CATEGORICAL = "space: {x: {uniform: [0, 1]}, a: {choice: [1, 2]}, b: {choice: [r, s]}}\n"
TWO_METRICS = "name: t\ntrainable: {builtin: analytic}\nmetric: [loss, loss2]\nmode: min\n"
PBT = "scheduler: {type: pbt, perturbation_interval: 2, hyperparam_mutations: {x: {uniform: [0, 1]}}}\ncheckpoint: {every: 2}\n"
CASES = {
    "numeric": (BASE + NUMERIC, Algorithm.GP),
    "numeric-asha": (BASE + NUMERIC + "scheduler: {type: asha, max_t: 9}\n", Algorithm.GP),
    "numeric-two-metrics": (TWO_METRICS + NUMERIC, Algorithm.GP),
    "numeric-few-trials": (BASE + NUMERIC + "search: {num_samples: 8}\n", Algorithm.OPTUNA_TPE),
    "numeric-many-parallel": (BASE + NUMERIC + "search: {max_concurrent: 16}\n", Algorithm.OPTUNA_TPE),
    "conditional": (BASE + BRANCHES, Algorithm.OPTUNA_TPE),
    "conditional-two-metrics": (TWO_METRICS + BRANCHES, Algorithm.OPTUNA_TPE),
    "25-dimensions": (BASE + WIDE, Algorithm.OPTUNA_TPE),
    "categorical-heavy": (BASE + CATEGORICAL, Algorithm.OPTUNA_TPE),
    "grid-nodes": (BASE + "space: {x: {uniform: [0, 1]}, g: {grid: [1, 2]}}\nsearch: {algorithm: auto}\n", Algorithm.RANDOM),
    "constants": (BASE + "space: {x: 1}\nsearch: {algorithm: auto}\n", Algorithm.RANDOM),
    "pbt": (BASE + "space: {x: {uniform: [0, 1]}}\nsearch: {algorithm: auto}\n" + PBT, Algorithm.RANDOM),
}


@pytest.mark.parametrize(("text", "expected"), CASES.values(), ids=CASES.keys())
def test_auto_picks_as_documented_and_never_a_searcher_that_refuses_the_spec(text: str, expected: Algorithm) -> None:
    experiment = load_experiment_text(text)
    assert experiment.spec.search.algorithm is Algorithm.AUTO
    pick = choose(experiment)
    assert pick.algorithm is expected and pick.reason
    if experiment.spec.multi_objective:
        assert pick.algorithm in MULTI_OBJECTIVE
    # the same spec naming the picked searcher passes every check (a refusal raises SpecError)
    explicit = load_experiment_text(text, overrides=[f"search.algorithm={expected.value}"])
    assert explicit.spec.search.algorithm is expected


def _drive(searcher: AutoSearcher, n: int, start: int = 0, took: float = 60.0) -> list[dict[str, Any]]:
    configs = []
    for i in range(start, start + n):
        config = searcher.suggest(f"t{i}")
        assert config is not None
        configs.append(config)
        searcher.on_trial_complete(f"t{i}", {"loss": (config["x"] - 0.3) ** 2, "time_total_s": took})
    return configs


def _auto(extra: str = "") -> AutoSearcher:
    text = BASE + "space: {x: {uniform: [0, 1]}, y: {uniform: [0, 1]}}\n" + f"search: {{num_samples: 40, seed: 4{extra}}}\n"
    searcher = create_search(load_experiment_text(text)).searcher
    assert isinstance(searcher, AutoSearcher) and searcher.algorithm is Algorithm.GP
    return searcher


def test_a_switch_tells_the_new_searcher_every_result_including_trials_still_running() -> None:
    searcher = _auto(", gp_trials: 5")
    running = searcher.suggest("early")  # suggested by gp, ends after the switch
    assert running is not None
    _drive(searcher, 5)
    assert searcher.algorithm is Algorithm.OPTUNA_TPE
    study = searcher.inner.study
    assert len(study.trials) == 5 and all(t.value is not None for t in study.trials)
    searcher.on_trial_complete("early", {"loss": 0.5})
    assert len(searcher.inner.study.trials) == 6  # told when it ended
    assert searcher.suggest("next") is not None
    start, switch = searcher.decisions
    assert (start.algorithm, switch.previous, switch.algorithm) == (Algorithm.GP, Algorithm.GP, Algorithm.OPTUNA_TPE)
    assert switch.told == 5 and "gp_trials 5" in switch.reason


@pytest.mark.slow
def test_a_suggestion_costing_more_than_its_share_of_a_trial_switches() -> None:
    ticks = iter(range(10_000))
    searcher = _auto()
    searcher._clock = lambda: float(next(ticks))  # each suggestion "takes" 1 s
    for i in range(10):  # priors: the GP models from its first suggestion on
        searcher.add_evaluated({"x": i / 10, "y": 0.5}, float(i))
    _drive(searcher, 2, took=5.0)  # 1 s of a 5 s trial: over 10%, but only 2 suggestions timed
    assert searcher.algorithm is Algorithm.GP
    _drive(searcher, 1, start=2, took=5.0)
    assert searcher.algorithm is Algorithm.OPTUNA_TPE
    assert len(searcher.inner.study.trials) == 13
    assert "over 10% of a trial's 5 s" in searcher.decisions[-1].reason


def test_a_restored_searcher_goes_on_with_the_saved_decisions(tmp_path: Path) -> None:
    searcher = _auto(", gp_trials: 4")
    _drive(searcher, 4)
    state = pickle.loads(pickle.dumps(searcher.get_state()))
    # the spec now has a budget auto would start with TPE for: the saved decisions win all the same
    other = create_search(
        load_experiment_text(BASE + "space: {x: {uniform: [0, 1]}, y: {uniform: [0, 1]}}\nsearch: {num_samples: 6, seed: 4}\n")
    ).searcher
    assert other.algorithm is Algorithm.OPTUNA_TPE
    fresh = _auto(", gp_trials: 4")
    fresh.set_state(state)
    assert fresh.algorithm is Algorithm.OPTUNA_TPE and fresh.decisions == searcher.decisions
    assert fresh.suggest("t4") == searcher.suggest("t4")
    assert [d.number for d in record(tmp_path, searcher.drain())] == [0, 1]
    assert record(tmp_path, fresh.drain()) == []  # replayed, not recorded twice
    assert [row["algorithm"] for row in read_decisions(tmp_path)] == ["gp", "optuna_tpe"]


SEEDED = """
name: auto-seeded
trainable: {builtin: analytic, objective: branin, iterations: 1}
metric: loss
mode: min
space: {x1: {uniform: [-5, 10]}, x2: {uniform: [0, 15]}}
search: {num_samples: 13, seed: 7, max_concurrent: 1, gp_trials: 12}
execution: {backend: inline}
"""


@pytest.mark.slow
def test_a_seeded_run_repeats_and_an_extension_goes_on_with_its_decisions(storage: Path) -> None:
    def run() -> tuple[Any, Recorder]:
        recorder = Recorder()
        experiment = load_experiment_text(SEEDED + f"storage: {storage}\n")
        return run_experiment(experiment, RunOptions(), recorder), recorder

    def configs(folder: Path) -> list[str]:
        trials = pq.read_table(folder / layout.TRIALS, columns=["trial_id", "config_json"]).to_pylist()
        return [t["config_json"] for t in sorted(trials, key=lambda t: t["trial_id"][-5:])]

    first, recorder = run()
    second, _ = run()
    assert configs(first.folder) == configs(second.folder) and len(configs(first.folder)) == 13
    events = [e.data for e in recorder.events if e.kind is EventKind.SEARCH_DECISION]
    assert [(e["previous"], e["algorithm"], e["trials"]) for e in events] == [(None, "gp", 0), ("gp", "optuna_tpe", 12)]
    assert [r["algorithm"] for r in read_decisions(first.folder)] == ["gp", "optuna_tpe"]

    more = Recorder()
    extended = extend_experiment(first.folder, 2, RunOptions(), more)
    assert extended.state is RunState.COMPLETED and len(extended.trials) == 15
    assert not [e for e in more.events if e.kind is EventKind.SEARCH_DECISION]  # nothing new decided
    assert [r["number"] for r in read_decisions(first.folder)] == [0, 1]


def test_validate_says_what_auto_starts_with_and_why(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from raytuner.cli import app

    spec = tmp_path / "s.yaml"
    spec.write_text(BASE + BRANCHES)
    result = CliRunner().invoke(app, ["validate", str(spec)])
    assert result.exit_code == 0, result.output
    assert "auto starts with optuna_tpe: the space has conditional branches, which gp cannot model" in result.output
    result = CliRunner().invoke(app, ["validate", str(spec), "--json", "--set", "search.algorithm=hyperopt"])
    assert result.exit_code == 0 and '"auto": null' in result.output


def test_with_several_metrics_the_new_searcher_is_told_every_value() -> None:
    text = TWO_METRICS + "space: {x: {uniform: [0, 1]}, y: {uniform: [0, 1]}}\nsearch: {num_samples: 20, seed: 2, gp_trials: 3}\n"
    searcher = create_search(load_experiment_text(text)).searcher
    assert searcher.algorithm is Algorithm.GP
    for i in range(3):
        config = searcher.suggest(f"t{i}")
        searcher.on_trial_complete(f"t{i}", {"loss": config["x"], "loss2": config["y"]})
    assert searcher.algorithm is Algorithm.OPTUNA_TPE
    assert [len(t.values) for t in searcher.inner.study.trials] == [2, 2, 2]


def test_a_decision_is_one_line_of_the_plain_output() -> None:
    import io

    from raytuner.cli.render import PlainLines
    from raytuner.execution.events import Event
    from raytuner.results.records import ExperimentBook

    out = io.StringIO()
    data = {"number": 1, "trials": 13, "algorithm": "optuna_tpe", "previous": "gp", "reason": "why", "told": 13}
    PlainLines(out).handle(Event(EventKind.SEARCH_DECISION, data), ExperimentBook("loss", 1.0))
    assert out.getvalue().endswith("search: auto switched from gp to optuna_tpe after 13 trials (told all 13): why\n")
