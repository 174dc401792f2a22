"""Optuna's samplers (TPE, CMA-ES, GP, NSGA-II) as raytuner searchers: driven directly and on real Ray."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from raytuner.errors import Location, SpecError
from raytuner.results.records import TrialStatus
from raytuner.search import REQUIREMENTS, missing_requirement
from raytuner.search.optuna import SAMPLERS, OptunaSearcher
from raytuner.search.sampler import SpaceSearcher
from raytuner.space.model import Space, parse_space, render_path
from raytuner.space.points import complete_point
from raytuner.spec.loader import load_experiment_text
from raytuner.spec.models import Algorithm

OPTUNA = [Algorithm.OPTUNA_TPE, Algorithm.CMAES, Algorithm.GP, Algorithm.NSGA2]
CONDITIONAL_OK = [Algorithm.OPTUNA_TPE, Algorithm.NSGA2]

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
    "act": {"choice": ["relu", None, [1, 2]]},
    "noise": {"qnormal": [0, 1, 0.5]},
    "fixed": 3,
}
PLAIN = {
    "x": {"uniform": [-2, 2]},
    "lr": {"loguniform": [1e-4, 1e-1]},
    "layers": {"randint": [1, 4]},
    "batch": {"qrandint": [16, 64, 16]},
    "hidden": {"lograndint": [8, 256]},
    "noise": {"normal": [0, 0.1]},
    "act": {"choice": ["relu", "tanh"]},
}
BRANIN = {"x1": {"uniform": [-5, 10]}, "x2": {"uniform": [0, 15]}}


def parse(raw: dict[str, Any]) -> Space:
    return parse_space(raw, lambda path: Location("test", None, render_path(path)))


def options(algorithm: Algorithm, seed: int, **extra: Any) -> Any:
    """The spec model of ``algorithm`` with small startup budgets, so the model part runs."""
    text = "name: t\ntrainable: {builtin: analytic}\nmetric: loss\nmode: min\nspace: {x: {uniform: [0, 1]}}\n"
    startup = {"population_size": 4} if algorithm is Algorithm.NSGA2 else {"n_startup_trials": 4}
    fields = {"algorithm": algorithm.value, "seed": seed, **startup, **extra}
    overrides = [f"search.{key}={value}" for key, value in fields.items()]
    return load_experiment_text(text, overrides=overrides).spec.search


def searcher(algorithm: Algorithm, space: Space, seed: int, mode: str = "min", **kwargs: Any) -> OptunaSearcher:
    search = options(algorithm, seed)
    return OptunaSearcher(space, "loss", mode, SAMPLERS[algorithm](search, space), seed=seed, **kwargs)


def leaves(config: Any) -> float:
    if isinstance(config, dict):
        return sum(leaves(v) for v in config.values())
    if isinstance(config, (int, float)) and not isinstance(config, bool):
        return float(config)
    return 0.0


def drive(s: Any, space: Space, n: int, objective: Any = lambda c: leaves(c) ** 2) -> list[dict[str, Any]]:
    configs = []
    for i in range(n):
        config = s.suggest(f"t{i}")
        assert complete_point(space, config, np.random.default_rng(0)) == config
        configs.append(config)
        s.on_trial_complete(f"t{i}", {"loss": objective(config)})
    return configs


def spaces_for(algorithm: Algorithm) -> list[dict[str, Any]]:
    return [PLAIN, CONDITIONAL] if algorithm in CONDITIONAL_OK else [PLAIN]


@pytest.mark.parametrize("algorithm", OPTUNA, ids=lambda a: a.value)
def test_configs_are_valid_and_seeded(algorithm: Algorithm) -> None:
    n = 5 if algorithm is Algorithm.GP else 8  # a GP fit takes about a second here
    for raw in spaces_for(algorithm):
        space = parse(raw)
        first = drive(searcher(algorithm, space, seed=5), space, n)
        again = drive(searcher(algorithm, space, seed=5), space, n)
        other = drive(searcher(algorithm, space, seed=6), space, n)
        assert first == again
        assert first != other
        if raw is CONDITIONAL:  # both branches, and the nested choice inside one, get visited
            assert {c["opt"]["name"] for c in first} == {"sgd", "adam"}


@pytest.mark.parametrize("algorithm", OPTUNA, ids=lambda a: a.value)
def test_points_come_first_and_exact_and_reach_optuna(algorithm: Algorithm) -> None:
    space = parse(PLAIN)
    points = [
        {"x": 1.5, "lr": 0.01, "layers": 2, "batch": 32, "hidden": 100, "noise": 0.05, "act": "tanh"},
        {"x": -1.0},
    ]
    s = searcher(algorithm, space, seed=0, points=points)
    configs = drive(s, space, 3)
    assert configs[0] == points[0]
    assert configs[1]["x"] == -1.0
    trials = s.study.trials
    assert trials[0].params["x"] == 1.5 and trials[0].params["act"] == 1 and trials[0].params["layers"] == 2
    assert math.isclose(trials[0].value, leaves(points[0]) ** 2)


def test_a_failed_or_nan_trial_is_failed_in_optuna_and_max_mode_maximizes() -> None:
    space = parse(BRANIN)
    s = searcher(Algorithm.OPTUNA_TPE, space, seed=0, mode="max")
    s.suggest("a")
    s.suggest("b")
    s.suggest("c")
    s.on_trial_complete("a", {"loss": 2.0})
    s.on_trial_complete("b", {"loss": float("nan")})
    s.on_trial_complete("c", None, error=True)
    states = [t.state.name for t in s.study.trials]
    assert states == ["COMPLETE", "FAIL", "FAIL"]
    assert s.study.direction.name == "MAXIMIZE"


def test_earlier_results_warm_start_the_study() -> None:
    space = parse(BRANIN)
    earlier = [({"x1": float(x), "x2": 2.0}, float(x) ** 2) for x in range(5)]
    s = searcher(Algorithm.OPTUNA_TPE, space, seed=0, evaluated=earlier)
    assert [t.params for t in s.study.trials] == [{"x1": float(x), "x2": 2.0} for x in range(5)]
    assert s.study.best_value == 0.0
    drive(s, space, 2)
    assert len(s.study.trials) == 7


@pytest.mark.parametrize(
    ("overrides", "raw", "expected"),
    [
        ({}, PLAIN, (True, False, True)),  # the spec's defaults: multivariate, constant liar
        ({}, CONDITIONAL, (True, True, True)),  # one multivariate group per branch
        ({"multivariate": "false"}, CONDITIONAL, (False, False, True)),  # Optuna refuses group without it
        ({"constant_liar": "false"}, PLAIN, (True, False, False)),  # Optuna's own default is true
    ],
    ids=["defaults", "conditional", "independent", "no-liar"],
)
def test_optuna_tpe_is_multivariate_grouped_when_conditional_and_lies(
    overrides: dict[str, str], raw: dict[str, Any], expected: tuple[bool, bool, bool]
) -> None:
    space = parse(raw)
    sampler = SAMPLERS[Algorithm.OPTUNA_TPE](options(Algorithm.OPTUNA_TPE, 0, **overrides), space)
    assert isinstance(sampler, optuna.samplers.TPESampler)
    assert (sampler._multivariate, sampler._group, sampler._constant_liar) == expected


def test_constant_liar_spreads_suggestions_around_pending_trials() -> None:
    # after 20 told trials TPE knows where the optimum is; 6 suggestions asked before any is
    # told land on top of each other without the liar, and keep apart with it (pending = bad)
    space = parse({"x1": {"uniform": [0, 1]}, "x2": {"uniform": [0, 1]}})

    def closest_pending(liar: bool) -> float:
        search = options(Algorithm.OPTUNA_TPE, 0, n_startup_trials=10, constant_liar=str(liar).lower())
        s = OptunaSearcher(space, "loss", "min", SAMPLERS[Algorithm.OPTUNA_TPE](search, space), seed=0)
        drive(s, space, 20, lambda c: (c["x1"] - 0.3) ** 2 + (c["x2"] - 0.7) ** 2)
        pending = [s.suggest(f"p{i}") for i in range(6)]
        assert sum(t.state.name == "RUNNING" for t in s.study.trials) == 6
        points = np.array([[c["x1"], c["x2"]] for c in pending if c is not None])
        return min(float(np.linalg.norm(a - b)) for i, a in enumerate(points) for b in points[i + 1 :])

    lying, honest = closest_pending(True), closest_pending(False)
    assert lying > 0.1 and lying > 3 * honest, (lying, honest)


def test_gp_models_two_objectives_and_moves_towards_the_front() -> None:
    # ZDT1 without its sum: f2 = 1 + x2 - sqrt(f1); the front is x2 = 0. Random search would
    # put x2 around 0.5; the GP's hypervolume improvement pushes it down once it has a model.
    space = parse({"x1": {"uniform": [0, 1]}, "x2": {"uniform": [0, 1]}})
    s = searcher(Algorithm.GP, space, seed=0, objectives=[("f1", "min"), ("f2", "min")])
    assert [d.name for d in s.study.directions] == ["MINIMIZE", "MINIMIZE"]
    for i in range(9):
        c = s.suggest(f"t{i}")
        assert c is not None
        s.on_trial_complete(f"t{i}", {"f1": c["x1"], "f2": 1 + c["x2"] - math.sqrt(c["x1"])})
    assert all(len(t.values) == 2 for t in s.study.trials)
    modelled = [t.params["x2"] for t in s.study.trials[4:]]  # after the 4 startup trials
    assert float(np.median(modelled)) < 0.1, modelled


def test_gp_is_accepted_for_several_metrics() -> None:
    text = (
        "name: mo\ntrainable: {builtin: analytic, objective: zdt1}\nmetric: [f1, f2]\nmode: min\n"
        "search: {algorithm: gp}\nspace: {x1: {uniform: [0, 1]}, x2: {uniform: [0, 1]}}\n"
    )
    assert load_experiment_text(text).spec.search.algorithm is Algorithm.GP


def test_state_round_trip_continues_identically(tmp_path: Path) -> None:
    space = parse(CONDITIONAL)
    s = searcher(Algorithm.OPTUNA_TPE, space, seed=1)
    drive(s, space, 6)
    s.save(str(tmp_path / "state.pkl"))
    restored = searcher(Algorithm.OPTUNA_TPE, space, seed=99)
    restored.restore(str(tmp_path / "state.pkl"))
    assert drive(restored, space, 3) == drive(s, space, 3)


def branin(config: dict[str, Any]) -> float:
    x1, x2 = config["x1"], config["x2"]
    return (x2 - 5.1 / (4 * math.pi**2) * x1**2 + 5 / math.pi * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10


def test_optuna_tpe_beats_random_search_on_branin() -> None:
    space = parse(BRANIN)
    tpe, rnd = [], []
    for seed in (0, 1, 2):
        s = searcher(Algorithm.OPTUNA_TPE, space, seed=seed)
        tpe.append(min(branin(c) for c in drive(s, space, 40, branin)))
        r = SpaceSearcher(space, "loss", "min", total=40, enumerate_choices=False, seed=seed)
        rnd.append(min(branin(c) for c in drive(r, space, 40, branin)))
    assert float(np.median(tpe)) < float(np.median(rnd))


# ------------------------------------------------------------------ validation


def spec(algorithm: str, space: str, extra: str = "") -> str:
    return f"""
name: v
trainable: {{builtin: analytic, iterations: 3}}
metric: loss
mode: min
search: {{algorithm: {algorithm}, num_samples: 6, seed: 3, max_concurrent: 2{extra}}}
space:
{space}
"""


COND_YAML = """
  x: {uniform: [-1, 1]}
  opt:
    choice:
      - {name: sgd, momentum: {uniform: [0.8, 0.99]}}
      - {name: adam}
"""
PLAIN_YAML = """
  x: {uniform: [-1, 1]}
  y: {randint: [0, 5]}
  act: {choice: [relu, tanh]}
"""


@pytest.mark.parametrize("algorithm", ["cmaes", "gp"])
def test_cmaes_and_gp_refuse_conditional_spaces_at_the_choice(algorithm: str) -> None:
    with pytest.raises(SpecError) as info:
        load_experiment_text(spec(algorithm, COND_YAML))
    assert "conditional" in str(info.value)
    assert "space.opt.choice" in str(info.value.location)
    assert info.value.location.line == 11
    # the hint names every other algorithm, and each of them takes this very space
    hint = str(info.value).split("use algorithm: ")[1].split(", or flatten")[0]
    named = [name.split(" (")[0] for name in hint.split(", ")]
    assert sorted(named) == sorted(a.value for a in Algorithm if a not in (Algorithm.CMAES, Algorithm.GP))
    for other in named:
        scheduler = "scheduler: {type: hyperband, max_t: 3}\n" if other == "bohb" else ""
        assert load_experiment_text(spec(other, COND_YAML) + scheduler).spec.search.algorithm.value == other


def test_cmaes_refuses_a_space_of_choices_only() -> None:
    with pytest.raises(SpecError, match="cmaes moves numeric parameters"):
        load_experiment_text(spec("cmaes", "  act: {choice: [relu, tanh]}\n"))


@pytest.mark.parametrize("algorithm", ["optuna_tpe", "nsga2"])
def test_define_by_run_searchers_accept_conditional_spaces(algorithm: str) -> None:
    assert load_experiment_text(spec(algorithm, COND_YAML)).spec.search.algorithm.value == algorithm


def test_unknown_option_is_an_error() -> None:
    with pytest.raises(SpecError, match="population"):
        load_experiment_text(spec("optuna_tpe", PLAIN_YAML, ", population_size: 4"))


@pytest.mark.parametrize(
    ("algorithm", "module", "hint"),
    [
        ("gp", "torch", "algorithm gp needs torch: pip install 'raytuner[optuna,torch]'"),
        ("gp", "scipy", "algorithm gp needs scipy: pip install 'raytuner[optuna,torch]'"),
        ("cmaes", "cmaes", "algorithm cmaes needs cmaes: pip install 'raytuner[optuna]'"),
    ],
    ids=["gp-torch", "gp-scipy", "cmaes"],
)
def test_a_missing_dependency_names_the_extra(monkeypatch: pytest.MonkeyPatch, algorithm: str, module: str, hint: str) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a))
    assert missing_requirement(Algorithm(algorithm)) == hint
    assert missing_requirement(Algorithm.OPTUNA_TPE) is None
    with pytest.raises(SpecError) as info:
        load_experiment_text(spec(algorithm, PLAIN_YAML))
    assert str(info.value).endswith(hint) and info.value.location.path == "search.algorithm"


@pytest.mark.parametrize("algorithm", list(REQUIREMENTS), ids=lambda a: a.value)
def test_the_extra_a_hint_names_installs_the_modules(algorithm: Algorithm) -> None:
    # pyproject's extras, and one level of what their packages require (scipy comes with scikit-learn)
    import importlib.metadata
    import tomllib

    from packaging.requirements import Requirement

    modules, extras = REQUIREMENTS[algorithm]
    declared = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    provided: set[str] = set()
    for extra in extras.split(","):
        assert extra in declared, f"raytuner[{extra}] is not an extra of pyproject.toml"
        for line in declared[extra]:
            name = Requirement(line).name
            provided |= {name, *(Requirement(r).name for r in importlib.metadata.requires(name) or () if "extra" not in r)}
    assert set(modules) <= provided, (modules, extras)


def test_model_based_searchers_are_refused_with_pbt() -> None:
    text = spec("optuna_tpe", PLAIN_YAML) + (
        "scheduler: {type: pbt, perturbation_interval: 2, hyperparam_mutations: {x: {uniform: [-1, 1]}}}\n"
        "checkpoint: {every: 2}\n"
    )
    with pytest.raises(SpecError, match="model-based"):
        load_experiment_text(text)


# ------------------------------------------------------------------ real Ray


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize("algorithm", OPTUNA, ids=lambda a: a.value)
def test_a_real_run_completes_every_trial(ray_session: None, storage: Path, algorithm: Algorithm) -> None:
    from raytuner.execution.events import Recorder
    from raytuner.execution.runner import RunOptions, RunState, run_experiment

    space = COND_YAML if algorithm in CONDITIONAL_OK else PLAIN_YAML
    point = ", points_to_evaluate: [{x: 0.5}]"
    experiment = load_experiment_text(spec(algorithm.value, space, point) + f"storage: {storage}\n")
    summary = run_experiment(experiment, RunOptions(), Recorder())
    assert summary.state is RunState.COMPLETED
    records = list(summary.trials.values())
    assert len(records) == 6
    assert all(r.status is TrialStatus.COMPLETED for r in records)
    rng = np.random.default_rng(0)
    for record in records:
        assert complete_point(experiment.space, record.config, rng) == record.config
    assert any(r.config["x"] == 0.5 for r in records)
