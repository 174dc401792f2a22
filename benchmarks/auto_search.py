"""``search.algorithm: auto`` against every searcher, all through raytuner (issue 23).

Two parts, each over ``--seeds`` seeds (median and spread over seeds):

* **analytic** (``--part analytic``): each searcher built from a spec exactly as a run builds
  it (``create_search``), driven in-process one trial at a time (``suggest`` then
  ``on_trial_complete``, no Ray: the harness of benchmarks/searchers.py). Functions:
  Branin, Hartmann3, Hartmann6 (as in docs/search-benchmark.md), ``mixed`` (a conditional,
  mixed space: a categorical, a numeric and a choice between two branches with their own
  parameters) and ``h6in24`` (Hartmann6 on the first 6 of 24 parameters, the 18 others adding
  ``0.1 * mean((x - 0.5)^2)``: 24 dimensions, same optimum). Each trial reports
  ``time_total_s`` = ``--trial-s`` (60: the analytic function stands for an expensive trial, as
  in any regret table); ``auto@1ms`` is auto told its trials take 1 ms, as a real run of these
  functions would.
* **real** (``--part real``): ``raytuner`` runs (inline backend, in this process) of the
  built-in MLP on digits, the CNN on digit images and the MLP regressor on diabetes, over a
  numeric space each (lr, weight decay or dropout, width, depth; optimizer adam), a fixed
  budget of ``--trials`` trials and epochs, ASHA on, 2 trials at once. Reported: the best
  validation score, the wall time from launch to the target score (None: not reached) and
  the run's wall time.

    .venv/bin/python benchmarks/auto_search.py --part analytic [--seeds 10] [--evals 100]
        [--only auto gp ...] [--functions mixed h6in24] [--jobs 2]
    .venv/bin/python benchmarks/auto_search.py --part real [--seeds 2] [--trials 12]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from raytuner.workloads.analytic import branin, hartmann3, hartmann6

OUT = Path("benchmarks/results")
CHECKPOINTS = (25, 50, 100)
BRANIN_MIN = 0.397887


def mixed(config: dict[str, Any]) -> float:
    """A conditional mixed space's objective: a branch, a categorical and a numeric term."""
    branch = config["model"]
    if branch["kind"] == "a":
        base = branin({"x1": -5 + 15 * branch["u"], "x2": 15 * branch["v"]}) / 10
    else:
        base = 0.5 + (branch["z"] - 0.3) ** 2
    return float(base + {"r": 0.3, "s": 0.0, "t": 0.6}[config["c"]] + (config["w"] - 0.2) ** 2)


def h6in24(config: dict[str, Any]) -> float:
    rest = [config[f"x{i}"] for i in range(7, 25)]
    return float(hartmann6(config) + 0.1 * float(np.mean((np.array(rest) - 0.5) ** 2)))


UNIT = {"uniform": [0, 1]}
FUNCTIONS: dict[str, tuple[Callable[[dict[str, Any]], float], dict[str, Any], float]] = {
    "branin": (branin, {"x1": {"uniform": [-5, 10]}, "x2": {"uniform": [0, 15]}}, BRANIN_MIN),
    "hartmann3": (hartmann3, {f"x{i}": UNIT for i in range(1, 4)}, -3.86278),
    "hartmann6": (hartmann6, {f"x{i}": UNIT for i in range(1, 7)}, -3.32237),
    "mixed": (
        mixed,
        {
            "model": {"choice": [{"kind": "a", "u": UNIT, "v": UNIT}, {"kind": "b", "z": UNIT}]},
            "c": {"choice": ["r", "s", "t"]},
            "w": UNIT,
        },
        BRANIN_MIN / 10,
    ),
    "h6in24": (h6in24, {f"x{i}": UNIT for i in range(1, 25)}, -3.32237),
}
# Which searchers validate for which space (gp and cmaes refuse conditional choices).
SEARCHERS = ("random", "hyperopt", "optuna_tpe", "cmaes", "gp", "nsga2", "nevergrad_de", "auto", "auto@1ms")
REFUSES = {"mixed": {"gp", "cmaes"}}


def experiment_for(algorithm: str, raw: dict[str, Any], seed: int, evals: int) -> Any:
    from raytuner.api.running import load_spec

    spec = {
        "name": "bench",
        "trainable": {"builtin": "analytic"},
        "metric": "loss",
        "mode": "min",
        "space": raw,
        "search": {"algorithm": algorithm, "num_samples": evals, "seed": seed},
    }
    return load_spec(spec)


def analytic_one(task: tuple[str, str, int, int, float]) -> dict[str, Any]:
    """One searcher on one function for one seed: the regret at each checkpoint."""
    from raytuner.search import create_search

    name, function, seed, evals, trial_s = task
    try:
        import torch

        torch.set_num_threads(1)  # two jobs on two cores
    except ImportError:
        pass
    algorithm, took = ("auto", 0.001) if name == "auto@1ms" else (name, trial_s)
    f, raw, optimum = FUNCTIONS[function]
    searcher = create_search(experiment_for(algorithm, raw, seed, evals)).searcher
    start = time.perf_counter()
    values: list[float] = []
    for i in range(evals):
        config = searcher.suggest(str(i))
        values.append(f(config))
        searcher.on_trial_complete(str(i), {"loss": values[-1], "time_total_s": took})
    best = np.minimum.accumulate(values)
    switches = [f"{d.previous.value}->{d.algorithm.value}@{d.trials}" for d in getattr(searcher, "decisions", [])[1:]]
    first = getattr(searcher, "decisions", [None])[0]
    return {
        "searcher": name,
        "function": function,
        "seed": seed,
        "regret": {n: float(best[n - 1] - optimum) for n in CHECKPOINTS if n <= evals},
        "seconds": time.perf_counter() - start,
        "auto": None if first is None else " ".join([first.algorithm.value, *switches]),
    }


def analytic_table(rows: list[dict[str, Any]], evals: int) -> str:
    marks = [n for n in CHECKPOINTS if n <= evals]
    head = "| function | searcher | seeds | " + " | ".join(f"regret @{n} (median [min, max])" for n in marks)
    lines = [head + " | s/run | auto's decisions |", "|" + "---|" * (5 + len(marks))]
    for function in FUNCTIONS:
        for name in SEARCHERS:
            group = [r for r in rows if (r["function"], r["searcher"]) == (function, name)]
            if not group:
                continue
            cells = []
            for n in marks:
                regrets = [r["regret"][str(n)] if str(n) in r["regret"] else r["regret"][n] for r in group]
                cells.append(f"{statistics.median(regrets):.3g} [{min(regrets):.2g}, {max(regrets):.2g}]")
            seconds = statistics.mean(r["seconds"] for r in group)
            autos = sorted({r["auto"] for r in group if r["auto"]})
            lines.append(
                f"| {function} | {name} | {len(group)} | " + " | ".join(cells) + f" | {seconds:.1f} | {'; '.join(autos)} |"
            )
    return "\n".join(lines)


# ---------------------------------------------------------------------------- real tuning

WORKLOADS: dict[str, dict[str, Any]] = {
    "mlp-digits": {
        "trainable": {"builtin": "mlp_classifier", "dataset": "digits", "max_epochs": 9, "validation": {"fraction": 0.2}},
        "metric": "val_accuracy",
        "mode": "max",
        "space": {
            "lr": {"loguniform": [1.0e-4, 1.0e-1]},
            "hidden": {"randint": [32, 257]},
            "depth": {"randint": [1, 4]},
            "dropout": {"uniform": [0.0, 0.5]},
            "weight_decay": {"loguniform": [1.0e-6, 1.0e-3]},
            "optimizer": "adam",
            "batch_size": 64,
        },
        "scheduler": {"type": "asha", "max_t": 9, "grace_period": 1, "reduction_factor": 3},
        "target": 0.98,
    },
    "cnn-digits": {
        "trainable": {"builtin": "cnn_classifier", "dataset": "digits", "max_epochs": 6},
        "metric": "val_accuracy",
        "mode": "max",
        "space": {
            "lr": {"loguniform": [3.0e-4, 1.0e-2]},
            "depth": {"randint": [1, 3]},
            "channels": {"randint": [8, 17]},
            "hidden": {"randint": [32, 65]},
            "dropout": {"uniform": [0.0, 0.3]},
            "optimizer": "adam",
            "batch_size": 64,
        },
        "scheduler": {"type": "asha", "max_t": 6, "grace_period": 2, "reduction_factor": 2},
        "target": 0.975,
    },
    "mlp-diabetes": {
        "trainable": {
            "builtin": "mlp_regressor",
            "dataset": "diabetes",
            "max_epochs": 30,
            "validation": {"fraction": 0.25},
            "standardize_target": True,
        },
        "metric": "val_rmse",
        "mode": "min",
        "space": {
            "lr": {"loguniform": [1.0e-4, 3.0e-2]},
            "hidden": {"randint": [16, 65]},
            "depth": {"randint": [1, 3]},
            "dropout": {"uniform": [0.0, 0.3]},
            "weight_decay": {"loguniform": [1.0e-6, 1.0e-2]},
            "optimizer": "adam",
            "batch_size": 32,
        },
        "scheduler": {"type": "asha", "max_t": 30, "grace_period": 3, "reduction_factor": 3},
        "target": 53.5,
    },
}
REAL_SEARCHERS = ("random", "optuna_tpe", "gp", "auto")


def real_one(workload: str, algorithm: str, seed: int, trials: int, storage: Path) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from raytuner.api.running import load_spec
    from raytuner.execution.events import Recorder
    from raytuner.execution.runner import RunOptions, run_experiment
    from raytuner.results.search_decisions import read_decisions

    w = WORKLOADS[workload]
    spec = {
        "name": f"{workload}-{algorithm}-{seed}",
        "trainable": {**w["trainable"], "seed": seed},
        "metric": w["metric"],
        "mode": w["mode"],
        "space": w["space"],
        "search": {"algorithm": algorithm, "num_samples": trials, "seed": seed, "max_concurrent": 2},
        "scheduler": w["scheduler"],
        "resources": {"cpu": 1},
        "checkpoint": {"every": 0},
        "execution": {"backend": "inline"},
        "storage": str(storage),
    }
    launched = time.time()
    summary = run_experiment(load_spec(spec), RunOptions(num_cpus=2), Recorder())
    wall = time.time() - launched
    results = pq.read_table(summary.folder / "results.parquet", columns=["timestamp", w["metric"]]).to_pylist()
    results.sort(key=lambda r: r["timestamp"])
    sign = 1 if w["mode"] == "max" else -1
    best, reached = None, None
    for row in results:
        value = row[w["metric"]]
        if value is None:
            continue
        if best is None or sign * value > sign * best:
            best = value
        if reached is None and sign * best >= sign * w["target"]:
            reached = max(0.0, row["timestamp"].timestamp() - launched)  # reports are stamped to the second
    decisions = read_decisions(summary.folder)
    return {
        "workload": workload,
        "searcher": algorithm,
        "seed": seed,
        "trials": trials,
        "best": best,
        "to_target_s": reached,
        "wall_s": wall,
        "auto": " ".join(f"{d['algorithm']}@{d['trials']}" for d in decisions) or None,
    }


def real_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| workload (target) | searcher | seeds | best score (median [min, max]) | s to target (median; reached) "
        "| run s (median) | auto's decisions |",
        "|---|---|---|---|---|---|---|",
    ]
    for workload, w in WORKLOADS.items():
        for name in REAL_SEARCHERS:
            group = [r for r in rows if (r["workload"], r["searcher"]) == (workload, name)]
            if not group:
                continue
            bests = [r["best"] for r in group]
            reached = [r["to_target_s"] for r in group if r["to_target_s"] is not None]
            to_target = f"{statistics.median(reached):.0f}" if len(reached) * 2 > len(group) else "-"
            autos = "; ".join(sorted({r["auto"] for r in group if r["auto"]}))
            lines.append(
                f"| {workload} ({w['metric']} {'>=' if w['mode'] == 'max' else '<='} {w['target']:g}) | {name} | "
                f"{len(group)} | {statistics.median(bests):.4g} [{min(bests):.4g}, {max(bests):.4g}] | "
                f"{to_target}; {len(reached)}/{len(group)} | {statistics.median(r['wall_s'] for r in group):.0f} | {autos} |"
            )
    return "\n".join(lines)


# ---------------------------------------------------------------------------- entry points


def analytic_rows(
    seeds: int, evals: int, only: Any = None, functions: Any = None, jobs: int = 2, trial_s: float = 60.0
) -> list[dict[str, Any]]:
    tasks = [
        (name, function, seed, evals, trial_s)
        for name in SEARCHERS
        if not only or name in only
        for function in FUNCTIONS
        if (not functions or function in functions) and name.split("@")[0] not in REFUSES.get(function, ())
        for seed in range(seeds)
    ]
    tasks.sort(key=lambda t: t[0] not in ("gp", "auto"))  # the slow ones first, so the pool ends evenly
    with ProcessPoolExecutor(jobs) as pool:
        return list(pool.map(analytic_one, tasks))


def real_rows(
    seeds: int, trials: int, storage: Path, only: Any = None, workloads: Any = None, first_seed: int = 0
) -> list[dict[str, Any]]:
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    rows = []
    for workload in WORKLOADS:
        if workloads and workload not in workloads:
            continue
        for seed in range(first_seed, first_seed + seeds):
            for name in REAL_SEARCHERS:
                if not only or name in only:
                    rows.append(real_one(workload, name, seed, trials, storage))
                    print(json.dumps(rows[-1]), flush=True)
    return rows


def measure(tmp: Path, analytic_seeds: int, evals: int, real_seeds: int, trials: int, searchers: Any = None) -> dict[str, Any]:
    """benchmarks/run.py's ``auto`` section: both parts."""
    start = time.perf_counter()
    analytic = analytic_rows(analytic_seeds, evals, searchers)
    middle = time.perf_counter()
    real = real_rows(real_seeds, trials, tmp, searchers)
    end = time.perf_counter()
    return {"evals": evals, "analytic": analytic, "analytic_s": middle - start, "real": real, "real_s": end - middle}


def table(result: dict[str, Any]) -> list[str]:
    return [
        analytic_table(result["analytic"], result["evals"]),
        "",
        f"Analytic: {len(result['analytic'])} runs in {result['analytic_s']:.0f} s.",
        "",
        real_table(result["real"]),
        "",
        f"Real tuning: {len(result['real'])} runs in {result['real_s']:.0f} s.",
    ]


def _save(stem: str, rows: list[dict[str, Any]]) -> None:
    """Rows are added to ``benchmarks/results/<stem>.json``: separate runs add up to one table
    (``--table`` draws it from all of them)."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{stem}.json"
    earlier = json.loads(path.read_text()) if path.is_file() else []
    path.write_text(json.dumps(earlier + rows, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("analytic", "real"), required=True)
    parser.add_argument("--table", action="store_true", help="only print the table of every saved run of the part")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--evals", type=int, default=100)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--first-seed", type=int, default=0, help="real: seeds from this one (to add seeds to a saved run)")
    parser.add_argument("--trial-s", type=float, default=60.0, help="analytic: the time_total_s each trial reports")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--only", nargs="*", help="searchers to run (default: all)")
    parser.add_argument("--functions", nargs="*", help="analytic functions (default: all)")
    parser.add_argument("--workloads", nargs="*", help="real workloads (default: all)")
    args = parser.parse_args()
    if args.table:
        saved = json.loads((OUT / f"auto_{args.part}.json").read_text())
        print(analytic_table(saved, args.evals) if args.part == "analytic" else real_table(saved))
        return
    start = time.perf_counter()
    if args.part == "analytic":
        rows = analytic_rows(args.seeds, args.evals, args.only, args.functions, args.jobs, args.trial_s)
        _save("auto_analytic", rows)
        print(analytic_table(rows, args.evals))
    else:
        with tempfile.TemporaryDirectory(prefix="raytuner-auto-bench-") as tmp:
            rows = real_rows(args.seeds, args.trials, Path(tmp), args.only, args.workloads, args.first_seed)
        _save("auto_real", rows)
        print(real_table(rows))
    print(f"\n{len(rows)} runs in {time.perf_counter() - start:.0f} s.")


if __name__ == "__main__":
    main()
