"""Per-trial and per-report overhead of ``raytuner run`` against its peers, measured in the same run.

N trivial trials (R reports each, no real work), 2 at a time with 1 CPU each, five ways:

* ``raytuner``: the installed ``raytuner run benchmarks/specs/trivial.yaml --json`` as a
  subprocess; the whole command, and ``experiment_started`` -> ``experiment_finished``
  (its JSON events: the run without Ray's start-up).
* ``raytuner-inline``: the same command with ``--set execution.backend=inline`` (trials in
  threads of the raytuner process, no Ray started); whether a Ray session appeared anyway is
  recorded and flagged in the table (an inline row measured on Ray is not the inline backend).
* ``ray-defaults``: plain Ray Tune as most people first write it (``tune.Tuner`` with
  its defaults) in a fresh Python process.
* ``ray-tuned``: the same, hand-tuned for short trials: ``reuse_actors=True``,
  ``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1``, ``verbose=0``.
* ``optuna``: Optuna in-process (random sampler, in-memory storage, ``trial.report`` R times,
  ``n_jobs=2`` threads), no Ray at all.

Each variant runs in its own process group with its own Ray temporary folder on 127.0.0.1,
shut down at the end; any process of ours left behind is killed (benchmarks/procs.py).
Writes ``overhead.md`` and ``overhead.json`` to ``--out`` and prints the table. No
assertions: the ratios are for reading (see benchmarks/README.md).

    .venv/bin/python benchmarks/overhead.py [--trials 100] [--reports 10] [--out benchmarks/results]
                                            [--only raytuner-inline --only ray-tuned] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from procs import HERE, Command, fmt, launch, machine, raytuner_argv, warm_up

SPEC = HERE / "specs" / "trivial.yaml"
CPUS = 2  # the Ray each variant starts; 1 CPU per trial, so 2 trials at a time
RESULT_PREFIX = "@@overhead-result@@ "

VARIANTS = ("raytuner", "raytuner-inline", "ray-defaults", "ray-tuned", "optuna")
PEERS = ("ray-defaults", "ray-tuned", "optuna")  # run by this module in a child process (--peer)
INLINE = "raytuner-inline"
# The variants that are ``raytuner run`` itself, with the ``--set`` values that make each one.
RAYTUNER_VARIANTS: dict[str, tuple[str, ...]] = {"raytuner": (), INLINE: ("execution.backend=inline",)}


# ---------------------------------------------------------------------------- peers (child side)


def _trivial_trainable(reports: int, sleep_s: float = 0.0) -> Any:
    def trivial(config: dict[str, float]) -> None:
        from ray import tune

        for step in range(1, reports + 1):
            if sleep_s:
                time.sleep(sleep_s)
            tune.report({"loss": config["x"] * config["x"] + 1.0 / step})

    return trivial


def _ray_peer(variant: str, trials: int, reports: int, storage: str, sleep_s: float = 0.0) -> dict[str, Any]:
    t0 = time.perf_counter()
    import ray
    from ray import tune

    t_import = time.perf_counter()
    ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, num_cpus=CPUS)
    t_init = time.perf_counter()
    started_at = time.time()  # the moment raytuner's experiment_started corresponds to
    tuned = variant == "ray-tuned"
    tuner = tune.Tuner(
        _trivial_trainable(reports, sleep_s),
        param_space={"x": tune.uniform(-1, 1)},
        tune_config=tune.TuneConfig(
            num_samples=trials, metric="loss", mode="min", **({"reuse_actors": True} if tuned else {})
        ),
        run_config=tune.RunConfig(
            storage_path=storage, name=f"overhead-{variant}", **({"verbose": 0} if tuned else {})
        ),
    )
    results = tuner.fit()
    t_fit = time.perf_counter()
    ok = sum(1 for result in results if result.error is None and result.metrics.get("loss") is not None)
    ray.shutdown()
    t_end = time.perf_counter()
    return {
        "import_s": t_import - t0,
        "init_s": t_init - t_import,
        "fit_s": t_fit - t_init,  # Tuner built and fitted
        "shutdown_s": t_end - t_fit,
        "trials_ok": ok,
        "started_at": started_at,
        "finished_at": time.time(),
    }


def _optuna_peer(trials: int, reports: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t_import = time.perf_counter()
    started_at = time.time()

    def objective(trial: Any) -> float:
        x = trial.suggest_float("x", -1.0, 1.0)
        loss = 0.0
        for step in range(1, reports + 1):
            loss = x * x + 1.0 / step
            trial.report(loss, step)
        return loss

    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=trials, n_jobs=CPUS)
    t_fit = time.perf_counter()
    ok = sum(1 for trial in study.trials if trial.state == optuna.trial.TrialState.COMPLETE)
    return {
        "import_s": t_import - t0,
        "init_s": 0.0,
        "fit_s": t_fit - t_import,
        "shutdown_s": 0.0,
        "trials_ok": ok,
        "started_at": started_at,
        "finished_at": time.time(),
    }


def peer_main(variant: str, trials: int, reports: int, storage: str, sleep_s: float = 0.0) -> None:
    """One peer, inside a fresh process; prints one result line."""
    optuna = variant == "optuna"
    result = _optuna_peer(trials, reports) if optuna else _ray_peer(variant, trials, reports, storage, sleep_s)
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# ---------------------------------------------------------------------------- driver side


def run_raytuner(trials: int, reports: int, tmp: Path, timeout: float, overrides: tuple[str, ...] = (),
                 on_start: Callable[[int], None] | None = None, variant: str = "raytuner") -> dict[str, Any]:  # fmt: skip
    """``raytuner run`` of the trivial spec with N trials of R reports; the timings of its events.

    ``variant`` is a key of :data:`RAYTUNER_VARIANTS` (its ``--set`` values come first);
    ``overrides`` are more ``--set`` values; ``on_start`` gets the driver's pid as it starts.
    Storage and log go under ``tmp / variant``: two variants in one folder would meet in the
    same experiment folder (the spec's name).
    """
    work = tmp / variant
    work.mkdir(parents=True, exist_ok=True)
    sets = (*RAYTUNER_VARIANTS[variant], *overrides)
    argv = [*raytuner_argv(), "run", str(SPEC), "--set", f"search.num_samples={trials}",
            "--set", f"trainable.iterations={reports}", *[a for o in sets for a in ("--set", o)],
            "--storage", str(work / "storage"), "--cpus", str(CPUS), "--json"]  # fmt: skip
    done = launch(Command(argv, timeout_s=timeout, on_start=on_start), work / "raytuner.stderr")
    started, finished = done.first_event("experiment_started"), done.first_event("experiment_finished")
    return {
        "variant": variant,
        "command": " ".join(argv),
        "rc": done.rc,
        "wall_s": done.wall_s,
        # experiment_started -> experiment_finished: Tuner, fit, Ray shutdown, Parquet
        "run_s": finished["time"] - started["time"] if started and finished else None,
        # launch -> experiment_started: Python, CLI, spec, imports, ray.init
        "startup_s": started["time"] - done.launched if started else None,
        "exit_s": done.wall_s - (finished["time"] - done.launched) if finished else None,
        "trials_ok": (finished or {}).get("trials", {}).get("completed"),
        "ray_started": done.ray_started,  # for raytuner-inline: False once the inline executor runs it
        "leftover_processes": done.leftovers,
        "stderr_tail": done.stderr_tail,
        "launched": done.launched,
        "events": done.events(),
    }


def run_peer(variant: str, trials: int, reports: int, tmp: Path, timeout: float, sleep_s: float = 0.0,
             on_start: Callable[[int], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """One peer in a fresh Python process; the same spans as :func:`run_raytuner` (a Ray peer's
    trials sleep ``sleep_s`` before each report, as raytuner's ``trainable.sleep_s``)."""
    env = {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"} if variant == "ray-tuned" else {}
    argv = [sys.executable, str(Path(__file__).resolve()), "--peer", variant, "--trials", str(trials),
            "--reports", str(reports), "--storage", str(tmp / variant), "--sleep", str(sleep_s)]  # fmt: skip
    done = launch(Command(argv, env=env, timeout_s=timeout, on_start=on_start), tmp / f"{variant}.stderr")
    inner: dict[str, Any] = {}
    for _, line in done.lines:
        if line.startswith(RESULT_PREFIX):
            inner = json.loads(line[len(RESULT_PREFIX) :])
    fit, shutdown = inner.get("fit_s"), inner.get("shutdown_s")
    return {
        "variant": variant,
        "command": " ".join(argv),
        "rc": done.rc,
        "wall_s": done.wall_s,
        # The same span as raytuner's run_s: Tuner built, fitted, Ray shut down.
        "run_s": fit + shutdown if fit is not None and shutdown is not None else None,
        "startup_s": inner["started_at"] - done.launched if inner else None,  # Python, imports, ray.init
        "exit_s": done.wall_s - (inner["finished_at"] - done.launched) if inner else None,
        **{key: inner.get(key) for key in ("import_s", "init_s", "fit_s", "shutdown_s")},
        "trials_ok": inner.get("trials_ok"),
        "started_at": inner.get("started_at"),  # epoch seconds: the run span, for samplers of the peer
        "finished_at": inner.get("finished_at"),
        "stdout_lines": len(done.lines),
        "ray_started": done.ray_started,
        "leftover_processes": done.leftovers,
        "stderr_tail": done.stderr_tail,
    }


def _median(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def summarise(runs: list[dict[str, Any]], trials: int, reports: int) -> dict[str, dict[str, Any]]:
    summary: dict[str, dict[str, Any]] = {}
    for variant in VARIANTS:
        mine = [run for run in runs if run["variant"] == variant]
        if not mine:
            continue
        wall = _median([run["wall_s"] for run in mine])
        run_s = _median([run["run_s"] for run in mine])
        summary[variant] = {
            "repeats": len(mine),
            "wall_s": wall,
            "startup_s": _median([run["startup_s"] for run in mine]),
            "exit_s": _median([run["exit_s"] for run in mine]),
            "run_s": run_s,
            "run_s_all": [run["run_s"] for run in mine],
            "per_trial_wall_ms": None if wall is None else 1000 * wall / trials,
            "per_trial_run_ms": None if run_s is None else 1000 * run_s / trials,
            "per_report_run_ms": None if run_s is None else 1000 * run_s / (trials * reports),
            "trials_ok": min((run["trials_ok"] or 0) for run in mine),
            "all_rc_zero": all(run["rc"] == 0 for run in mine),
            "ray_started": any(run.get("ray_started") for run in mine),
        }
    return summary


def speedups(summary: dict[str, dict[str, Any]], reference: str = "raytuner") -> dict[str, dict[str, float | None]]:
    """other / reference for every other variant: above 1 means the reference took less time (it is
    that many times faster). One table holds two references, raytuner (Ray backend) and
    raytuner-inline, so each backend reads directly against plain Ray Tune."""
    out: dict[str, dict[str, float | None]] = {}
    ours = summary.get(reference)
    if ours is None:
        return out
    for other in VARIANTS:
        theirs = summary.get(other)
        if other != reference and theirs is not None:
            out[other] = {key: (theirs[key] / ours[key]) if ours[key] and theirs[key] else None for key in ("wall_s", "run_s")}
    return out


def measure(trials: int, reports: int, variants: list[str], tmp: Path, *, repeats: int = 1,
            timeout: float = 1200, once: tuple[str, ...] = ()) -> dict[str, Any]:  # fmt: skip
    """Run every variant ``repeats`` times, interleaved (those in ``once`` in the first round
    only); the summary (medians), the speed-ups and every run."""
    runs: list[dict[str, Any]] = []
    for repeat in range(repeats):
        for variant in [v for v in variants if repeat == 0 or v not in once]:
            work = tmp / f"{trials}x{reports}-{repeat}"
            work.mkdir(parents=True, exist_ok=True)
            print(f"[{repeat + 1}/{repeats}] {variant}: {trials} trials x {reports} reports ...", file=sys.stderr, flush=True)
            if variant in RAYTUNER_VARIANTS:
                run = run_raytuner(trials, reports, work, timeout, variant=variant)
                run.pop("events")  # every trial's events: the scale section reads them, the table does not
            else:
                run = run_peer(variant, trials, reports, work, timeout)
            run["repeat"] = repeat
            runs.append(run)
            print(f"    wall {run['wall_s']:.2f}s, run {fmt(run['run_s'])}s, rc {run['rc']}, trials ok {run['trials_ok']}",
                  file=sys.stderr, flush=True)  # fmt: skip
            if run["rc"] != 0:
                print(run["stderr_tail"], file=sys.stderr)
    summary = summarise(runs, trials, reports)
    return {
        "trials": trials,
        "reports": reports,
        "concurrency": CPUS,
        "cpus_per_trial": 1,
        "repeats": repeats,
        "summary": summary,
        "speedups": speedups(summary),  # against raytuner (Ray backend)
        "speedups_inline": speedups(summary, INLINE),  # against raytuner-inline
        "runs": runs,
    }


TABLE_HEAD = (
    "| N x R | variant | wall s | start-up s | run s | per trial (run) ms | per report (run) ms | trials ok "
    "| speed-up (run) | speed-up (wall) | inline speed-up (run) | inline speed-up (wall) |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)
COLUMNS = TABLE_HEAD.split("\n")[0].count("|") - 1
RAY_STARTED = " **(Ray started: not inline)**"


def table_rows(result: dict[str, Any]) -> list[str]:
    """Rows of :data:`TABLE_HEAD` for one :func:`measure` result."""
    rows = []
    trials, summary = result["trials"], result["summary"]
    for variant in VARIANTS:
        row = summary.get(variant)
        if row is None:
            continue
        flag = RAY_STARTED if variant == INLINE and row.get("ray_started") else ""
        rows.append(
            f"| {trials} x {result['reports']} | {variant}{_runs(row)}{flag} | {fmt(row['wall_s'])} "
            f"| {fmt(row['startup_s'])} | {fmt(row['run_s'])}{_spread(row)} | {fmt(row['per_trial_run_ms'], '.1f')} "
            f"| {fmt(row['per_report_run_ms'], '.2f')} "
            f"| {row['trials_ok']}/{trials}{'' if row['all_rc_zero'] else ' (rc!=0)'} "
            f"| {_against(result, 'speedups', 'raytuner', variant)} "
            f"| {_against(result, 'speedups_inline', INLINE, variant)} |"
        )
    return rows


def _against(result: dict[str, Any], key: str, reference: str, variant: str) -> str:
    """The two speed-up cells (run, wall) of ``variant`` against ``reference``: '1' on the
    reference's own row, '-' where the reference did not run."""
    if variant == reference:
        return "1 | 1"
    up = result.get(key, {}).get(variant, {})  # results saved before the inline variant have no speedups_inline
    return f"{fmt(up.get('run_s'), '.3g')} | {fmt(up.get('wall_s'), '.3g')}"


def not_run_row(trials: int, reports: int, variant: str, why: str) -> str:
    """A row saying why a variant was left out at this size (the other cells empty)."""
    return f"| {trials} x {reports} | {variant} | {why} |" + " |" * (COLUMNS - 3)


def _runs(row: dict[str, Any]) -> str:
    return f" ({row['repeats']} runs)" if row["repeats"] > 1 else ""


def _spread(row: dict[str, Any]) -> str:
    """The range of the run spans behind a median, when there were several."""
    present = [value for value in row.get("run_s_all", []) if value is not None]
    return f" ({min(present):.1f}-{max(present):.1f})" if len(present) > 1 else ""


LEGEND = (
    "wall: the whole subprocess. start-up: launch -> the run starts (Python, imports, ray.init; no ray.init "
    "for raytuner-inline and optuna). "
    "run: raytuner's experiment_started -> experiment_finished events; for the Ray peers Tuner built + fit + "
    "ray.shutdown(); for Optuna study.optimize. Per trial / per report: run divided by N / by N x R. "
    "Speed-up: this row's time divided by raytuner's (Ray backend); above 1, raytuner is that many times "
    "faster. Inline speed-up: this row's time divided by raytuner-inline's (`--set execution.backend=inline`: "
    "trials in threads of the raytuner process, no Ray); above 1, raytuner-inline is that many times faster, "
    "so its ray-defaults and ray-tuned cells compare the inline backend with plain Ray Tune, and its raytuner "
    "cells with the Ray backend. (Ray started: not inline): a Ray session appeared in the inline variant's "
    "RAY_TMPDIR, so that row measured the Ray backend, not the inline one. "
    "With several runs a variant's figures are medians, the run span's range in brackets."
)


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"# Overhead: trivial trials, {CPUS} at a time, 1 CPU each",
        "",
        f"Machine: {m['cpu_count']} CPUs ({m['cpu_model']}), Python {m['python']}, Ray {m['ray']}, "
        f"raytuner {m['raytuner']}; medians of {report['repeats']} repeat(s); {report['date']}.",
        "",
        TABLE_HEAD,
        *table_rows(report),
        "",
        LEGEND,
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=100, help="trials per variant (default 100)")
    parser.add_argument("--reports", type=int, default=10, help="reports per trial (default 10)")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder for overhead.{md,json}")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each variant; the table shows medians")
    parser.add_argument("--only", choices=VARIANTS, action="append", help="run only this variant (repeatable)")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds before a variant is killed")
    parser.add_argument("--keep", action="store_true", help="keep the temporary storage and logs")
    parser.add_argument("--peer", choices=PEERS, help=argparse.SUPPRESS)  # child process entry
    parser.add_argument("--storage", help=argparse.SUPPRESS)
    parser.add_argument("--sleep", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.peer:
        peer_main(args.peer, args.trials, args.reports, args.storage, args.sleep)
        return 0

    variants = [v for v in VARIANTS if not args.only or v in args.only]
    tmp = Path(tempfile.mkdtemp(prefix="raytuner-overhead-"))
    warm_up()
    try:
        result = measure(args.trials, args.reports, variants, tmp, repeats=args.repeats, timeout=args.timeout)
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report = {"benchmark": "overhead", "date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "machine": machine(), **result}
    args.out.mkdir(parents=True, exist_ok=True)
    table = markdown(report)
    (args.out / "overhead.md").write_text(table)
    (args.out / "overhead.json").write_text(json.dumps(report, indent=2) + "\n")
    print(table)
    return 0 if all(run["rc"] == 0 for run in result["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
