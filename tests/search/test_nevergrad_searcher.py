"""Nevergrad's differential evolution as a raytuner searcher: translation, seeds, points, failures, Ray."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("nevergrad")

from raytuner.errors import Location, SpecError
from raytuner.results.records import TrialStatus
from raytuner.search import missing_requirement
from raytuner.search.nevergrad import NevergradSearcher, build_optimizer
from raytuner.space.model import Space, parse_space, render_path
from raytuner.space.nevergrad import set_config, to_config, to_nevergrad
from raytuner.space.points import complete_point
from raytuner.spec.loader import load_experiment_text
from raytuner.spec.models import Algorithm

CONDITIONAL = {
    "opt": {
        "choice": [
            {
                "name": "sgd",
                "momentum": {"uniform": [0.8, 0.99]},
                "decay": {"choice": [{"kind": "step", "gamma": {"qloguniform": [0.01, 1, 0.01]}}, {"kind": "none"}]},
            },
            {"name": "adam", "betas": [0.9, 0.999]},
        ]
    },
    "lr": {"loguniform": [1e-4, 1e-1]},
    "layers": {"randint": [1, 4]},
    "hidden": {"lograndint": [8, 256]},
    "batch": {"qrandint": [16, 64, 16]},
    "act": {"choice": ["relu", None, [1, 2]]},
    "noise": {"qnormal": [0, 1, 0.5]},
    "fixed": 3,
}
FLAT = {"x1": {"uniform": [-5, 10]}, "x2": {"uniform": [0, 15]}}


def parse(raw: dict[str, Any]) -> Space:
    return parse_space(raw, lambda path: Location("test", None, render_path(path)))


def objective(config: dict[str, Any]) -> float:
    return float(config["lr"] * 100 + config["layers"] + (config["opt"]["name"] == "adam"))


def drive(s: NevergradSearcher, space: Space, n: int) -> list[dict[str, Any]]:
    configs = []
    for i in range(n):
        config = s.suggest(f"t{i}")
        assert config is not None
        assert complete_point(space, config, np.random.default_rng(0)) == config  # inside the space
        configs.append(config)
        s.on_trial_complete(f"t{i}", {"loss": objective(config)})
    return configs


@pytest.mark.parametrize("optimizer", ["DE", "TwoPointsDE"])
def test_configs_are_inside_a_conditional_space_and_seeded(optimizer: str) -> None:
    space = parse(CONDITIONAL)
    first = drive(NevergradSearcher(space, "loss", "min", optimizer, budget=30, seed=5), space, 30)
    again = drive(NevergradSearcher(space, "loss", "min", optimizer, budget=30, seed=5), space, 30)
    other = drive(NevergradSearcher(space, "loss", "min", optimizer, budget=30, seed=6), space, 30)
    assert first == again
    assert first != other
    assert {c["opt"]["name"] for c in first} == {"sgd", "adam"}  # both branches are searched
    assert all(c["fixed"] == 3 and c["act"] in ("relu", None, [1, 2]) for c in first)


def test_a_configuration_written_into_a_candidate_reads_back_the_same() -> None:
    space = parse(CONDITIONAL)
    rng = np.random.default_rng(3)
    param = to_nevergrad(space)
    for _ in range(20):
        config = complete_point(space, {}, rng)
        candidate = param.spawn_child()
        set_config(space, candidate, config)
        back = to_config(space, candidate)
        assert back.keys() == config.keys()
        assert back["opt"] == config["opt"] or back["opt"]["name"] == config["opt"]["name"]
        assert back["layers"] == config["layers"] and back["act"] == config["act"] and back["batch"] == config["batch"]
        assert back["lr"] == pytest.approx(config["lr"], rel=1e-9)


def test_through_raytuner_equals_nevergrad_called_directly() -> None:
    space = parse(FLAT)

    def f(x1: float, x2: float) -> float:
        return (x1 - 1) ** 2 + (x2 - 3) ** 2

    s = NevergradSearcher(space, "loss", "min", "DE", budget=40, seed=11)
    ours = []
    for i in range(40):
        config = s.suggest(str(i))
        assert config is not None
        ours.append(f(config["x1"], config["x2"]))
        s.on_trial_complete(str(i), {"loss": ours[-1]})

    import nevergrad as ng

    param = ng.p.Dict(x1=ng.p.Scalar(lower=-5, upper=10), x2=ng.p.Scalar(lower=0, upper=15))
    param.random_state.seed(11)
    opt = build_optimizer("DE", param, budget=40)
    direct = []
    for _ in range(40):
        candidate = opt.ask()
        direct.append(f(candidate.value["x1"], candidate.value["x2"]))
        opt.tell(candidate, direct[-1])
    assert ours == direct


def test_failed_and_nan_trials_are_not_told_and_max_mode_negates() -> None:
    space = parse(FLAT)
    s = NevergradSearcher(space, "acc", "max", "DE", budget=10, seed=0, points=[{"x1": 1.0, "x2": 1.0}, {"x1": 2.0}])
    first, second = s.suggest("a"), s.suggest("b")
    assert first == {"x1": 1.0, "x2": 1.0}
    assert second is not None and second["x1"] == 2.0  # a partial point: the rest is drawn
    s.on_trial_complete("a", {"acc": 0.5})
    s.on_trial_complete("b", {"acc": 0.9})
    assert s.optimizer.num_tell == 2 and s.optimizer.num_tell_not_asked == 2
    s.suggest("c")
    s.suggest("d")
    s.on_trial_complete("c", error=True)
    s.on_trial_complete("d", {"acc": float("nan")})
    assert s.optimizer.num_tell == 2
    assert s.optimizer.recommend().value["x1"] == pytest.approx(2.0)  # the higher accuracy, as Nevergrad minimizes -acc


def test_earlier_results_are_told_before_the_first_suggestion() -> None:
    space = parse(FLAT)
    s = NevergradSearcher(space, "loss", "min", "DE", budget=10, seed=0)
    for x in range(5):
        s.add_evaluated({"x1": float(x), "x2": 2.0}, float(x))
    assert s.optimizer.num_tell == 5
    assert s.optimizer.recommend().value == pytest.approx({"x1": 0.0, "x2": 2.0})


def test_state_round_trip_continues_identically(tmp_path: Path) -> None:
    space = parse(CONDITIONAL)
    s = NevergradSearcher(space, "loss", "min", "DE", budget=20, seed=1)
    drive(s, space, 8)
    s.save(str(tmp_path / "state.pkl"))
    restored = NevergradSearcher(space, "loss", "min", "DE", budget=20, seed=99)
    restored.restore(str(tmp_path / "state.pkl"))
    assert drive(restored, space, 4) == drive(s, space, 4)


def test_a_missing_nevergrad_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nevergrad" else real(name, *a))
    hint = missing_requirement(Algorithm.NEVERGRAD_DE)
    assert hint == "algorithm nevergrad_de needs nevergrad: pip install 'raytuner[nevergrad]'"
    with pytest.raises(SpecError, match=r"raytuner\[nevergrad\]"):
        load_experiment_text(SPEC.format(algorithm="nevergrad_de", extra=""))


SPEC = """
name: v
trainable: {{builtin: analytic, iterations: 2}}
metric: loss
mode: min
search: {{algorithm: {algorithm}, num_samples: 6, seed: 3, max_concurrent: 2{extra}}}
space:
  x: {{uniform: [-1, 1]}}
  opt:
    choice:
      - {{name: sgd, momentum: {{uniform: [0.8, 0.99]}}}}
      - {{name: adam}}
"""


def test_spec_options_and_unknown_keys() -> None:
    experiment = load_experiment_text(SPEC.format(algorithm="nevergrad_de", extra=", popsize: 8"))
    assert getattr(experiment.spec.search, "popsize", None) == 8
    with pytest.raises(SpecError, match="n_startup_trials"):
        load_experiment_text(SPEC.format(algorithm="nevergrad_de", extra=", n_startup_trials: 8"))
    with pytest.raises(SpecError, match="nevergrad_de"):  # NGOpt is not offered (see docs/search-benchmark.md)
        load_experiment_text(SPEC.format(algorithm="nevergrad_ngopt", extra=""))


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["nevergrad_de"])
def test_a_real_run_completes_every_trial(ray_session: None, storage: Path, algorithm: str) -> None:
    from raytuner.execution.events import Recorder
    from raytuner.execution.runner import RunOptions, RunState, run_experiment

    text = SPEC.format(algorithm=algorithm, extra=", points_to_evaluate: [{x: 0.5}]") + f"storage: {storage}\n"
    experiment = load_experiment_text(text)
    summary = run_experiment(experiment, RunOptions(), Recorder())
    assert summary.state is RunState.COMPLETED
    records = list(summary.trials.values())
    assert len(records) == 6
    assert all(r.status is TrialStatus.COMPLETED for r in records)
    rng = np.random.default_rng(0)
    for record in records:
        assert complete_point(experiment.space, record.config, rng) == record.config
    assert any(r.config["x"] == 0.5 for r in records)
