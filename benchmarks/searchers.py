"""Search quality: every raytuner searcher against the same library called directly.

Branin (2-D), Hartmann3 and Hartmann6, known optima 0.397887, -3.86278, -3.32237. Each
searcher runs ``--evals`` evaluations per seed, *sequentially and in-process*: raytuner's own
``Searcher`` classes are driven directly (``suggest`` then ``on_trial_complete``, one trial at
a time, no Ray), because a full Ray run per evaluation would take hours here; the wrapping
under test (space translation, ask/tell, points, failure handling) is the same code a Ray run
uses. Peers: ``hyperopt.fmin`` with the same TPE settings, and Optuna's ``study.optimize``
with the same sampler settings, and Nevergrad's optimizers with the same parametrization.
Reported: median simple regret (best value found minus the optimum) at 25, 50 and 100
evaluations over the seeds.

BOHB needs budgets, so it runs on a multi-fidelity version of each function: a trial reports
``f(x) + s * z_x * (1/t - 1/max_t)`` at iteration ``t`` (``z_x`` a standard normal drawn once per
configuration, ``s`` the function's scale: a low budget ranks configurations with an error that
shrinks as the trial goes on; at ``max_t`` = 9 the value is exact), under HyperBand's brackets
(``max_t`` 9, ``reduction_factor`` 3, synchronous successive halving, simulated in-process).
One "evaluation" there is ``max_t`` iterations of budget, and the regret counts only
configurations that reached ``max_t``. Its peer is the same HyperBand with random search
(``hyperband_random``): equal budget, model against no model.

    .venv/bin/python benchmarks/searchers.py [--seeds 10] [--gp-seeds 3] [--evals 100]
        [--jobs 2] [--out docs/search-benchmark.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from raytuner.errors import Location
from raytuner.space.model import Space, parse_space, render_path
from raytuner.workloads.analytic import branin, hartmann3, hartmann6

Objective = Callable[[dict[str, Any]], float]
FUNCTIONS: dict[str, tuple[Objective, dict[str, Any], float]] = {
    "branin": (branin, {"x1": {"uniform": [-5, 10]}, "x2": {"uniform": [0, 15]}}, 0.397887),
    "hartmann3": (hartmann3, {f"x{i}": {"uniform": [0, 1]} for i in range(1, 4)}, -3.86278),
    "hartmann6": (hartmann6, {f"x{i}": {"uniform": [0, 1]} for i in range(1, 7)}, -3.32237),
}
CHECKPOINTS = (25, 50, 100)
# (searcher, how it is called); "raytuner" drives raytuner's Searcher, "direct" the library alone
RUNS = [
    ("random", "raytuner"),
    ("hyperopt", "raytuner"),
    ("hyperopt", "direct"),
    ("optuna_tpe", "raytuner"),
    ("optuna_tpe", "direct"),
    ("cmaes", "raytuner"),
    ("cmaes", "direct"),
    ("gp", "raytuner"),
    ("gp", "direct"),
    ("nsga2", "raytuner"),
    ("nsga2", "direct"),
    ("nevergrad_de", "raytuner"),
    ("nevergrad_de", "direct"),
    ("nevergrad_ngopt", "raytuner"),
    ("nevergrad_ngopt", "direct"),
    ("hyperband_random", "raytuner"),
    ("bohb", "raytuner"),
    # suggestions 4 at a time, as with parallel trials (Nevergrad's NGOpt cannot: see the docs)
    ("optuna_tpe", "raytuner, 4 at once"),
    ("nevergrad_de", "raytuner, 4 at once"),
]
BATCH = 4
NEVERGRAD = {"nevergrad_de": "DE", "nevergrad_ngopt": "NGOpt"}
MULTI_FIDELITY = ("hyperband_random", "bohb")
MAX_T, ETA = 9, 3
# the scale of each function's low-budget error (about the spread of its values over the box)
SCALE = {"branin": 50.0, "hartmann3": 1.0, "hartmann6": 0.5}


def space_of(raw: dict[str, Any]) -> Space:
    return parse_space(raw, lambda path: Location("benchmark", None, render_path(path)))


def search_options(algorithm: str, seed: int) -> Any:
    """The spec's defaults for ``algorithm`` (the same options a YAML spec gets)."""
    from raytuner.spec.loader import load_experiment_text

    text = "name: b\ntrainable: {builtin: analytic}\nmetric: loss\nmode: min\nspace: {x: {uniform: [0, 1]}}\n"
    return load_experiment_text(text, overrides=[f"search.algorithm={algorithm}", f"search.seed={seed}"]).spec.search


def via_raytuner(
    algorithm: str,
    space: Space,
    seed: int,
    evals: int,
    f: Callable[[dict[str, Any]], float],
    *,
    batch: int = 1,
    noise: float = 0.0,
) -> list[float]:
    """The true value of each configuration suggested; ``batch`` are suggested before any is
    told (as with parallel trials), and the searcher is told the value plus ``noise``-sd noise."""
    from raytuner.search.hyperopt import TpeSearcher
    from raytuner.search.optuna import SAMPLERS, OptunaSearcher
    from raytuner.search.sampler import SpaceSearcher
    from raytuner.spec.models import Algorithm

    options = search_options(algorithm, seed)
    if algorithm in NEVERGRAD:
        from raytuner.search.nevergrad import NevergradSearcher

        searcher: Any = NevergradSearcher(
            space, "loss", "min", NEVERGRAD[algorithm], budget=evals, num_workers=batch, seed=seed
        )
    elif algorithm == "random":
        searcher = SpaceSearcher(space, "loss", "min", total=evals, enumerate_choices=False, seed=seed)
    elif algorithm == "hyperopt":
        searcher = TpeSearcher(
            space, "loss", "min", n_initial_points=options.n_initial_points, gamma=options.gamma, seed=seed
        )
    else:
        sampler = SAMPLERS[Algorithm(algorithm)](options, space)
        searcher = OptunaSearcher(space, "loss", "min", sampler, seed=seed)
    values: list[float] = []
    jitter = np.random.default_rng(seed + 20_000)
    while len(values) < evals:
        ids = [str(len(values) + k) for k in range(min(batch, evals - len(values)))]
        configs = [searcher.suggest(i) for i in ids]
        for i, config in zip(ids, configs, strict=True):
            values.append(f(config))
            searcher.on_trial_complete(i, {"loss": values[-1] + noise * float(jitter.standard_normal())})
    return values


def via_library(
    algorithm: str, raw: dict[str, Any], seed: int, evals: int, f: Callable[[dict[str, Any]], float]
) -> list[float]:
    options = search_options(algorithm, seed)
    names = list(raw)
    bounds = {name: raw[name]["uniform"] for name in names}
    if algorithm in NEVERGRAD:
        import nevergrad as ng

        from raytuner.search.nevergrad import build_optimizer

        param = ng.p.Dict(**{name: ng.p.Scalar(lower=bounds[name][0], upper=bounds[name][1]) for name in names})
        param.random_state.seed(seed)
        optimizer = build_optimizer(NEVERGRAD[algorithm], param, budget=evals)
        values = []
        for _ in range(evals):
            candidate = optimizer.ask()
            values.append(f(candidate.value))
            optimizer.tell(candidate, values[-1])
        return values
    if algorithm == "hyperopt":
        import hyperopt as hpo

        values: list[float] = []

        def objective(config: dict[str, Any]) -> float:
            values.append(f(config))
            return values[-1]

        hp_space = {name: hpo.hp.uniform(name, *bounds[name]) for name in names}
        algo = hpo.partial(hpo.tpe.suggest, n_startup_jobs=options.n_initial_points, gamma=options.gamma)
        hpo.fmin(
            objective, hp_space, algo=algo, max_evals=evals, rstate=np.random.default_rng(seed), show_progressbar=False
        )
        return values
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sampler = {
            "optuna_tpe": lambda: optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=options.n_startup_trials, multivariate=True, constant_liar=True
            ),
            "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=options.n_startup_trials),
            "gp": lambda: optuna.samplers.GPSampler(seed=seed, n_startup_trials=options.n_startup_trials),
            "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed, population_size=options.population_size),
        }[algorithm]()
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: f({name: t.suggest_float(name, *bounds[name]) for name in names}), n_trials=evals)
    return [float(t.value) for t in study.trials]


def with_hyperband(
    algorithm: str, space: Space, seed: int, evals: int, f: Callable[[dict[str, Any]], float], scale: float
) -> list[float]:
    """Synchronous HyperBand brackets over ``evals * MAX_T`` iterations; the true value of each
    configuration that reaches ``MAX_T``, at the budget spent when it got there (one entry per
    ``MAX_T`` iterations: the best full evaluation so far, inf before the first)."""
    from raytuner.search.bohb import BohbSearcher
    from raytuner.search.sampler import SpaceSearcher

    if algorithm == "bohb":
        searcher: Any = BohbSearcher(space, "loss", "min", seed=seed)
    else:
        searcher = SpaceSearcher(space, "loss", "min", total=10**9, enumerate_choices=False, seed=seed)
    noise = np.random.default_rng(seed + 10_000)
    total = evals * MAX_T
    spent = 0
    best = np.inf
    curve: list[float] = []
    s_max = round(np.log(MAX_T) / np.log(ETA))
    count = 0

    def charge(iterations: int) -> None:
        nonlocal spent
        spent += iterations
        while len(curve) < min(spent // MAX_T, evals):
            curve.append(best)

    while spent < total:
        for s in range(s_max, -1, -1):
            n = int(np.ceil((s_max + 1) / (s + 1) * ETA**s))
            r = MAX_T * ETA ** (-s)
            live = []
            for _ in range(n):
                trial = str(count)
                count += 1
                config = searcher.suggest(trial)
                live.append((trial, config, f(config), float(noise.standard_normal()), 0))
            for i in range(s + 1):
                budget = int(round(r * ETA**i))
                scored = []
                for trial, config, value, z, done in live:
                    for t in range(done + 1, budget + 1):
                        reported = value + scale * z * (1 / t - 1 / MAX_T)
                        searcher.on_trial_result(trial, {"loss": reported, "training_iteration": t})
                    if budget == MAX_T:
                        best = min(best, value)
                    charge(budget - done)
                    scored.append((reported, trial, config, value, z, budget))
                scored.sort(key=lambda row: row[0])
                keep = max(1, len(scored) // ETA) if i < s else 0
                for row in scored[keep:]:
                    searcher.on_trial_complete(row[1], {"loss": row[0], "training_iteration": row[5]})
                live = [(trial, config, value, z, budget) for _, trial, config, value, z, budget in scored[:keep]]
                if spent >= total:
                    break
            if spent >= total:
                break
    return curve


def one(task: tuple[str, str, str, int, int]) -> dict[str, Any]:
    algorithm, how, function, seed, evals = task
    try:
        import torch

        torch.set_num_threads(1)  # two jobs on two cores
    except ImportError:
        pass
    f, raw, optimum = FUNCTIONS[function]
    start = time.perf_counter()
    if algorithm in MULTI_FIDELITY:
        values = with_hyperband(algorithm, space_of(raw), seed, evals, f, SCALE[function])
    elif how == "raytuner":
        values = via_raytuner(algorithm, space_of(raw), seed, evals, f)
    elif how == "raytuner, 4 at once":
        values = via_raytuner(algorithm, space_of(raw), seed, evals, f, batch=BATCH)

    else:
        values = via_library(algorithm, raw, seed, evals, f)
    best = np.minimum.accumulate(values)
    regret = {n: float(best[n - 1] - optimum) for n in CHECKPOINTS if n <= evals}
    return {
        "algorithm": algorithm,
        "via": how,
        "function": function,
        "seed": seed,
        "regret": regret,
        "seconds": time.perf_counter() - start,
    }


def table(rows: list[dict[str, Any]], evals: int) -> str:
    marks = [n for n in CHECKPOINTS if n <= evals]
    head = "| function | searcher | via | seeds | " + " | ".join(f"regret @{n}" for n in marks) + " | s/run |"
    lines = [head, "|" + "---|" * (5 + len(marks))]
    for function in FUNCTIONS:
        for algorithm, how in RUNS:
            group = [r for r in rows if (r["function"], r["algorithm"], r["via"]) == (function, algorithm, how)]
            if not group:
                continue
            cells = [f"{np.median([r['regret'][n] for r in group]):.4g}" for n in marks]
            seconds = np.mean([r["seconds"] for r in group])
            lines.append(
                f"| {function} | {algorithm} | {how} | {len(group)} | " + " | ".join(cells) + f" | {seconds:.2f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--gp-seeds", type=int, default=3, help="seeds for gp (about 1 s per suggestion here)")
    parser.add_argument("--evals", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="algorithms to run (default: all)")
    parser.add_argument("--via", nargs="*", help="ways of calling to run (default: all), e.g. 'raytuner, noisy'")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/searchers.md"))
    args = parser.parse_args()
    tasks = [
        (algorithm, how, function, seed, args.evals)
        for algorithm, how in RUNS
        if (not args.only or algorithm in args.only) and (not args.via or how in args.via)
        for function in FUNCTIONS
        for seed in range(args.gp_seeds if algorithm == "gp" else args.seeds)
    ]
    tasks.sort(key=lambda t: t[0] != "gp")  # the slow ones first, so the pool ends evenly
    start = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(one, tasks))
    wall = time.perf_counter() - start
    import optuna

    machine = f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, Python {platform.python_version()}"
    versions = f"optuna {optuna.__version__}, hyperopt 0.3.0"
    try:
        import nevergrad

        versions += f", nevergrad {nevergrad.__version__}"
    except ImportError:
        pass
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))
    text = table(rows, args.evals)
    args.out.write_text(
        f"{text}\n\nMachine: {machine}; {versions}; {len(tasks)} runs in {wall:.0f} s with {args.jobs} jobs.\n"
    )
    print(text)
    print(f"\n{len(tasks)} runs in {wall:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
