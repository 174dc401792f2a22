"""Search efficiency on the built-in digits MLP: best validation accuracy against wall-clock time.

The workload is ``experiments/torch-digits-mlp.yaml`` (an MLP on scikit-learn's digits, up to
27 epochs, 2 trials at a time with 1 CPU each). Six recipes, each for several seeds:

* ``optuna_tpe+asha`` (raytuner's default recipe: the spec as shipped with its algorithm left to
  the default, ``optuna_tpe``, 8 startup trials as the spec's HyperOpt has, 48 trials),
* ``optuna_tpe+asha-inline`` (the same recipe with ``--set execution.backend=inline``: the
  trials in threads of the raytuner process, no Ray started),
* ``hyperopt+asha`` (the spec as shipped, 48 trials),
* ``random+fifo`` (48 random trials, every one trained to the end),
* ``pbt`` (a population of 8 random trials, lr exploited/explored every 3 epochs),

each through ``raytuner run --json`` as a subprocess, and

* ``optuna-tpe+sh``: Optuna's TPE sampler with its successive-halving pruner
  (min_resource 1, reduction factor 3: ASHA's settings), 48 trials in one process with
  ``n_jobs=2`` threads, training with raytuner's own :class:`TrainingRun` on the same data
  split, so model, data and epochs are identical.

For each run: the best-so-far validation accuracy over wall-clock time from launch, read from
``results.parquet`` (its ``timestamp`` column; Ray stamps results to the second) for raytuner
and from the reports the Optuna process prints; the time to reach the target accuracy
(0.97) from the new-best events (to the millisecond); the final best and the epochs run.

    .venv/bin/python benchmarks/search_efficiency.py [--seeds 0 1 2] [--trials 48]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from procs import ROOT, Command, fmt, launch, raytuner_argv

SPEC = ROOT / "experiments" / "torch-digits-mlp.yaml"
TARGET = 0.97
CPUS = 2
MARKS_S = (10, 20, 40, 80)  # best-so-far shown at these seconds after launch
REPORT_PREFIX = "@@epoch@@ "


def recipes(trials: int, seed: int) -> dict[str, list[str]]:
    """``--set`` overrides of the shipped spec for each raytuner recipe."""
    common = [f"trainable.seed={seed}"]
    default = [
        *common,
        f"search={{algorithm: optuna_tpe, num_samples: {trials}, max_concurrent: {CPUS}, n_startup_trials: 8, seed: {seed}}}",
    ]
    return {
        "optuna_tpe+asha": default,
        # the default recipe on the inline backend: the same searcher and ASHA, trials in threads
        "optuna_tpe+asha-inline": [*default, "execution.backend=inline"],
        "hyperopt+asha": [*common, f"search.num_samples={trials}", f"search.seed={seed}"],
        "random+fifo": [
            *common,
            f"search={{algorithm: random, num_samples: {trials}, max_concurrent: {CPUS}, seed: {seed}}}",
            "scheduler={type: fifo}",
        ],
        "pbt": [
            *common,
            f"search={{algorithm: random, num_samples: 8, max_concurrent: {CPUS}, seed: {seed}}}",
            "scheduler={type: pbt, perturbation_interval: 3, quantile_fraction: 0.25, "
            "hyperparam_mutations: {lr: {loguniform: [1.0e-4, 1.0e-1]}}}",
            "checkpoint={every: 3, keep: 2}",
        ],
    }


METHODS = ("optuna_tpe+asha", "optuna_tpe+asha-inline", "hyperopt+asha", "random+fifo", "pbt", "optuna-tpe+sh")
DEFAULT_RECIPE = "optuna_tpe+asha"
INLINE_RECIPE = "optuna_tpe+asha-inline"


# ---------------------------------------------------------------------------- Optuna (child side)


def optuna_main(trials: int, seed: int) -> None:
    """Optuna TPE + successive halving on raytuner's digits MLP, in this process; prints each epoch."""
    import optuna
    import torch

    from raytuner.space.optuna import suggest
    from raytuner.spec.loader import load_experiment
    from raytuner.workloads.torch.datasets import load_table, make_folds
    from raytuner.workloads.torch.training import TrainingRun

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)  # one core per trial, like raytuner's resources: {cpu: 1}
    experiment = load_experiment(SPEC, [f"trainable.seed={seed}"])
    options = experiment.spec.trainable
    folds = make_folds(load_table(options, experiment.base_dir), options)  # type: ignore[arg-type]

    def objective(trial: Any) -> float:
        config = suggest(experiment.space, trial)
        run = TrainingRun(options, config, folds=folds)  # type: ignore[arg-type]
        accuracy = 0.0
        while not run.finished:
            metrics = run.step()
            accuracy = metrics["val_accuracy"]
            print(REPORT_PREFIX + json.dumps({"time": time.time(), "trial": trial.number, "val_accuracy": accuracy}),
                  flush=True)  # fmt: skip
            trial.report(accuracy, run.epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return accuracy

    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
    )
    study.optimize(objective, n_trials=trials, n_jobs=CPUS)


# ---------------------------------------------------------------------------- driver side


def _curve(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Best-so-far steps from (seconds, value) points: each time the best improves."""
    best, steps = float("-inf"), []
    for at, value in sorted(points):
        if value > best:
            best = value
            steps.append((round(at, 3), value))
    return steps


def _best_at(steps: list[tuple[float, float]], at: float) -> float | None:
    found = [value for t, value in steps if t <= at]
    return found[-1] if found else None


def _first_reaching(steps: list[tuple[float, float]], target: float) -> float | None:
    return next((t for t, value in steps if value >= target), None)


def run_raytuner(method: str, overrides: list[str], seed: int, tmp: Path, timeout: float) -> dict[str, Any]:
    import pyarrow.parquet as pq

    storage = tmp / "storage"
    argv = [*raytuner_argv(), "run", str(SPEC), "--json", "--storage", str(storage), "--cpus", str(CPUS),
            "--name", f"{method.replace('+', '-')}-{seed}", *[a for o in overrides for a in ("--set", o)]]  # fmt: skip
    done = launch(Command(argv, timeout_s=timeout), tmp / f"{method}-{seed}.stderr")
    out: dict[str, Any] = {"method": method, "seed": seed, "rc": done.rc, "wall_s": done.wall_s, "command": " ".join(argv),
                           "ray_started": done.ray_started}  # fmt: skip
    started, finished = done.first_event("experiment_started"), done.first_event("experiment_finished")
    if finished is None or started is None:
        return {**out, "stderr_tail": done.stderr_tail}
    table = pq.read_table(Path(finished["folder"]) / "results.parquet", columns=["timestamp", "val_accuracy"])
    stamps = [ts.timestamp() - done.launched for ts in table.column("timestamp").to_pylist()]
    values = table.column("val_accuracy").to_pylist()
    steps = _curve([(t, v) for t, v in zip(stamps, values, strict=True) if v is not None])
    bests = [(e["time"] - done.launched, e["value"]) for e in done.events() if e["event"] == "new_best"]
    return {
        **out,
        "startup_s": started["time"] - done.launched,
        "epochs": table.num_rows,
        "final_best": steps[-1][1] if steps else None,
        "curve": steps,  # from results.parquet, seconds after launch (1 s resolution)
        "time_to_target_s": _first_reaching(_curve(bests), TARGET),  # new_best events (ms)
        "time_to_target_parquet_s": _first_reaching(steps, TARGET),
        "epochs_to_target": next((i + 1 for i, v in enumerate(_in_time_order(stamps, values)) if v >= TARGET), None),
    }


def _in_time_order(stamps: list[float], values: list[Any]) -> list[float]:
    return [v for _, v in sorted(zip(stamps, values, strict=True), key=lambda p: p[0]) if v is not None]


def run_optuna(trials: int, seed: int, tmp: Path, timeout: float) -> dict[str, Any]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--optuna-child", "--trials", str(trials), "--seeds", str(seed)]
    done = launch(Command(argv, timeout_s=timeout), tmp / f"optuna-{seed}.stderr")
    out: dict[str, Any] = {"method": "optuna-tpe+sh", "seed": seed, "rc": done.rc, "wall_s": done.wall_s,
                           "command": " ".join(argv)}  # fmt: skip
    reports = [json.loads(line[len(REPORT_PREFIX) :]) for _, line in done.lines if line.startswith(REPORT_PREFIX)]
    if not reports:
        return {**out, "stderr_tail": done.stderr_tail}
    points = [(r["time"] - done.launched, r["val_accuracy"]) for r in reports]
    steps = _curve(points)
    return {
        **out,
        "startup_s": None,
        "epochs": len(reports),
        "final_best": steps[-1][1],
        "curve": steps,
        "time_to_target_s": _first_reaching(steps, TARGET),
        "time_to_target_parquet_s": None,
        "epochs_to_target": next((i + 1 for i, (_, v) in enumerate(points) if v >= TARGET), None),
    }


def measure(seeds: list[int], trials: int, tmp: Path, *, methods: tuple[str, ...] = METHODS,
            timeout: float = 1800) -> dict[str, Any]:  # fmt: skip
    tmp.mkdir(parents=True, exist_ok=True)
    runs = []
    for seed in seeds:
        for method in methods:
            print(f"search: {method} seed {seed} ...", file=sys.stderr, flush=True)
            if method == "optuna-tpe+sh":
                run = run_optuna(trials, seed, tmp, timeout)
            else:
                run = run_raytuner(method, recipes(trials, seed)[method], seed, tmp, timeout)
            runs.append(run)
            reached = fmt(run.get("time_to_target_s"), ".1f")
            print(f"    wall {run['wall_s']:.1f}s, best {fmt(run.get('final_best'), '.4f')}, to {TARGET}: {reached}s, "
                  f"rc {run['rc']}", file=sys.stderr, flush=True)  # fmt: skip
    return {"target": TARGET, "trials": trials, "seeds": seeds, "concurrency": CPUS, "summary": summarise(runs), "runs": runs}


def _median(values: list[Any]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    summary = {}
    for method in METHODS:
        mine = [run for run in runs if run["method"] == method]
        if not mine:
            continue
        summary[method] = {
            "runs": len(mine),
            "reached": sum(1 for run in mine if run.get("time_to_target_s") is not None),
            "time_to_target_s": _median([run.get("time_to_target_s") for run in mine]),
            "time_to_target_each": [run.get("time_to_target_s") for run in mine],
            "final_best": _median([run.get("final_best") for run in mine]),
            "epochs": _median([run.get("epochs") for run in mine]),
            "wall_s": _median([run["wall_s"] for run in mine]),
            "ray_started": any(run.get("ray_started") for run in mine),
            **{f"best_at_{s}s": _median([_best_at(run.get("curve") or [], s) for run in mine]) for s in MARKS_S},
        }
    return summary


def table(result: dict[str, Any]) -> list[str]:
    marks = " | ".join(f"best at {s} s" for s in MARKS_S)
    lines = [
        f"| method | reached {result['target']} | time to {result['target']} s (median; each) | {marks} "
        "| final best | epochs | wall s |",
        "|---|---:|---:|" + "---:|" * len(MARKS_S) + "---:|---:|---:|",
    ]
    for method, row in result["summary"].items():
        each = ", ".join(fmt(v, ".1f") for v in row["time_to_target_each"])
        at = " | ".join(fmt(row[f"best_at_{s}s"], ".4f") for s in MARKS_S)
        label = f"**{method}** (default)" if method == DEFAULT_RECIPE else method
        if method == INLINE_RECIPE and row.get("ray_started"):
            label += " **(Ray started: not inline)**"
        lines.append(
            f"| {label} | {row['reached']}/{row['runs']} | {fmt(row['time_to_target_s'], '.1f')} ({each}) | {at} "
            f"| {fmt(row['final_best'], '.4f')} | {fmt(row['epochs'], '.0f')} | {fmt(row['wall_s'], '.1f')} |"
        )
    return lines


LEGEND = (
    "Times are seconds from launching the command (raytuner: `raytuner run`, Ray's start-up included; "
    f"{INLINE_RECIPE}: the default recipe with `--set execution.backend=inline`, trials in threads of the "
    "raytuner process, no Ray to start; Optuna: the Python process, imports and data loading included). "
    "Best at T: the best validation accuracy of any epoch reported by then (median over seeds; '-': nothing "
    "reported yet). Epochs: epochs trained in all (ASHA, PBT and the pruner stop trials early). "
    "(Ray started: not inline): a Ray session appeared in the inline runs' RAY_TMPDIR, so that row measured "
    "the Ray backend."
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--trials", type=int, default=48)
    parser.add_argument("--only", choices=METHODS, action="append")
    parser.add_argument("--optuna-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.optuna_child:
        optuna_main(args.trials, args.seeds[0])
        return 0
    with tempfile.TemporaryDirectory(prefix="raytuner-search-") as tmp:
        result = measure(args.seeds, args.trials, Path(tmp), methods=tuple(args.only or METHODS))
    print("\n".join(table(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
