"""Search quality: every raytuner searcher against the same library called directly.

Branin (2-D), Hartmann3 and Hartmann6, known optima 0.397887, -3.86278, -3.32237. Each
searcher runs ``--evals`` evaluations per seed, *sequentially and in-process*: raytuner's own
``Searcher`` classes are driven directly (``suggest`` then ``on_trial_complete``, one trial at
a time, no Ray), because a full Ray run per evaluation would take hours here; the wrapping
under test (space translation, ask/tell, points, failure handling) is the same code a Ray run
uses. Peers: ``hyperopt.fmin`` with the same TPE settings, and Optuna's ``study.optimize``
with the same sampler settings. Reported: median simple regret (best value found minus the
optimum) at 25, 50 and 100 evaluations over the seeds.

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
]


def space_of(raw: dict[str, Any]) -> Space:
    return parse_space(raw, lambda path: Location("benchmark", None, render_path(path)))


def search_options(algorithm: str, seed: int) -> Any:
    """The spec's defaults for ``algorithm`` (the same options a YAML spec gets)."""
    from raytuner.spec.loader import load_experiment_text

    text = "name: b\ntrainable: {builtin: analytic}\nmetric: loss\nmode: min\nspace: {x: {uniform: [0, 1]}}\n"
    return load_experiment_text(text, overrides=[f"search.algorithm={algorithm}", f"search.seed={seed}"]).spec.search


def via_raytuner(
    algorithm: str, space: Space, seed: int, evals: int, f: Callable[[dict[str, Any]], float]
) -> list[float]:
    from raytuner.search.hyperopt import TpeSearcher
    from raytuner.search.optuna import SAMPLERS, OptunaSearcher
    from raytuner.search.sampler import SpaceSearcher
    from raytuner.spec.models import Algorithm

    options = search_options(algorithm, seed)
    if algorithm == "random":
        searcher: Any = SpaceSearcher(space, "loss", "min", total=evals, enumerate_choices=False, seed=seed)
    elif algorithm == "hyperopt":
        searcher = TpeSearcher(
            space, "loss", "min", n_initial_points=options.n_initial_points, gamma=options.gamma, seed=seed
        )
    else:
        sampler = SAMPLERS[Algorithm(algorithm)](options, space)
        searcher = OptunaSearcher(space, "loss", "min", sampler, seed=seed)
    values = []
    for i in range(evals):
        config = searcher.suggest(str(i))
        values.append(f(config))
        searcher.on_trial_complete(str(i), {"loss": values[-1]})
    return values


def via_library(
    algorithm: str, raw: dict[str, Any], seed: int, evals: int, f: Callable[[dict[str, Any]], float]
) -> list[float]:
    options = search_options(algorithm, seed)
    names = list(raw)
    bounds = {name: raw[name]["uniform"] for name in names}
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


def one(task: tuple[str, str, str, int, int]) -> dict[str, Any]:
    algorithm, how, function, seed, evals = task
    try:
        import torch

        torch.set_num_threads(1)  # two jobs on two cores
    except ImportError:
        pass
    f, raw, optimum = FUNCTIONS[function]
    start = time.perf_counter()
    if how == "raytuner":
        values = via_raytuner(algorithm, space_of(raw), seed, evals, f)
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
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/searchers.md"))
    args = parser.parse_args()
    tasks = [
        (algorithm, how, function, seed, args.evals)
        for algorithm, how in RUNS
        if not args.only or algorithm in args.only
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
