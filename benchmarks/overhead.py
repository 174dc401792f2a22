"""Per-trial overhead of ``raytuner run`` against plain Ray Tune, measured in the same run.

N trivial trials (one report each, no real work), 2 at a time with 1 CPU each, three ways:

* ``raytuner``: the installed ``raytuner run benchmarks/specs/trivial.yaml --json`` as a
  subprocess; the whole command, and ``experiment_started`` -> ``experiment_finished``
  (its JSON events: the run without Ray's start-up).
* ``ray-defaults``: plain Ray Tune as most people first write it (``tune.Tuner`` with
  its defaults) in a fresh Python process.
* ``ray-tuned``: the same, hand-tuned for short trials: ``reuse_actors=True``,
  ``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1``, ``verbose=0``.

Each variant runs in its own process group with its own Ray on 127.0.0.1, shut down at the
end; any process of ours left behind (found by a marker in its environment) is killed.
Writes ``overhead.md`` and ``overhead.json`` to ``--out`` and prints the table. No
assertions: the ratios are for reading (see benchmarks/README.md).

    .venv/bin/python benchmarks/overhead.py [--trials 100] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SPEC = HERE / "specs" / "trivial.yaml"
CPUS = 2  # the Ray each variant starts; 1 CPU per trial, so 2 trials at a time
MARK = "RAYTUNER_BENCH_MARK"  # environment variable that tags every process a variant starts
RESULT_PREFIX = "@@overhead-result@@ "

VARIANTS = ("raytuner", "ray-defaults", "ray-tuned")
PEERS = ("ray-defaults", "ray-tuned")


# ---------------------------------------------------------------------------- peers (child side)


def _trivial(config: dict[str, float]) -> None:
    from ray import tune

    tune.report({"loss": config["x"] * config["x"]})


def peer_main(variant: str, trials: int, storage: str) -> None:
    """Plain Ray Tune, run inside a fresh process; prints one result line."""
    t0 = time.perf_counter()
    import ray
    from ray import tune

    t_import = time.perf_counter()
    ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, num_cpus=CPUS)
    t_init = time.perf_counter()
    started_at = time.time()  # the moment raytuner's experiment_started corresponds to
    tuned = variant == "ray-tuned"
    tuner = tune.Tuner(
        _trivial,
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
    finished_at = time.time()
    print(
        RESULT_PREFIX
        + json.dumps(
            {
                "import_s": t_import - t0,
                "init_s": t_init - t_import,
                "fit_s": t_fit - t_init,  # Tuner built and fitted
                "shutdown_s": t_end - t_fit,
                "in_process_s": t_end - t0,
                "trials_ok": ok,
                "started_at": started_at,
                "finished_at": finished_at,
            }
        ),
        flush=True,
    )


# ---------------------------------------------------------------------------- driver side


def _ours(mark: str) -> list[int]:
    """Processes whose environment carries ``mark`` (everything a variant started)."""
    needle = f"{MARK}={mark}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _reap(proc: subprocess.Popen[bytes], mark: str) -> int:
    """Kill what the variant left behind: its process group, then anything else it tagged."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    leftovers = _ours(mark)
    for pid in leftovers:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return len(leftovers)


def _launch(
    cmd: list[str], env: dict[str, str], log: Path, timeout: float
) -> tuple[float, float, list[tuple[float, str]], int, int]:
    """Run ``cmd`` in its own session; return launch epoch, wall seconds, stdout lines, rc, leftovers."""
    mark = uuid.uuid4().hex
    env = {**env, MARK: mark}
    lines: list[tuple[float, str]] = []
    with log.open("wb") as err:
        launched = time.time()
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err, start_new_session=True)
        assert proc.stdout is not None
        deadline = start + timeout
        try:
            for raw in proc.stdout:
                lines.append((time.time(), raw.decode(errors="replace").rstrip("\n")))
                if time.perf_counter() > deadline:
                    raise subprocess.TimeoutExpired(cmd, timeout)
            rc = proc.wait(timeout=max(1.0, deadline - time.perf_counter()))
        except subprocess.TimeoutExpired:
            _reap(proc, mark)
            proc.wait()
            rc = -9
        wall = time.perf_counter() - start
    leftovers = _reap(proc, mark)
    return launched, wall, lines, rc, leftovers


def run_raytuner(trials: int, tmp: Path, timeout: float) -> dict[str, Any]:
    exe = Path(sys.executable).with_name("raytuner")
    command = [str(exe)] if exe.exists() else [sys.executable, "-c", "from raytuner.cli import entry; entry()"]
    cmd = [
        *command,
        "run",
        str(SPEC),
        "--set",
        f"search.num_samples={trials}",
        "--storage",
        str(tmp / "storage"),
        "--cpus",
        str(CPUS),
        "--json",
    ]
    launched, wall, lines, rc, leftovers = _launch(cmd, dict(os.environ), tmp / "raytuner.stderr", timeout)
    events: dict[str, dict[str, Any]] = {}
    for _, line in lines:
        with contextlib.suppress(ValueError):
            payload = json.loads(line)
            if isinstance(payload, dict) and "event" in payload:
                events.setdefault(payload["event"], payload)  # first of each kind
    started, finished = events.get("experiment_started"), events.get("experiment_finished")
    run_s = finished["time"] - started["time"] if started and finished else None
    completed = (finished or {}).get("trials", {}).get("completed")
    return {
        "variant": "raytuner",
        "command": " ".join(cmd),
        "rc": rc,
        "wall_s": wall,
        "run_s": run_s,  # experiment_started -> experiment_finished: Tuner, fit, Ray shutdown, Parquet
        # launch -> experiment_started: Python, CLI, spec, imports, ray.init
        "startup_s": started["time"] - launched if started else None,
        "exit_s": wall - (finished["time"] - launched) if finished else None,
        "trials_ok": completed,
        "leftover_processes": leftovers,
        "stderr_tail": _tail(tmp / "raytuner.stderr") if rc != 0 else "",
    }


def run_peer(variant: str, trials: int, tmp: Path, timeout: float) -> dict[str, Any]:
    env = dict(os.environ)
    if variant == "ray-tuned":
        env["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--peer", variant, "--trials", str(trials),
           "--storage", str(tmp / variant)]  # fmt: skip
    launched, wall, lines, rc, leftovers = _launch(cmd, env, tmp / f"{variant}.stderr", timeout)
    inner: dict[str, Any] = {}
    for _, line in lines:
        if line.startswith(RESULT_PREFIX):
            inner = json.loads(line[len(RESULT_PREFIX) :])
    fit, shutdown = inner.get("fit_s"), inner.get("shutdown_s")
    return {
        "variant": variant,
        "command": " ".join(cmd),
        "rc": rc,
        "wall_s": wall,
        # The same span as raytuner's run_s: Tuner built, fitted, Ray shut down.
        "run_s": fit + shutdown if fit is not None and shutdown is not None else None,
        "startup_s": inner["started_at"] - launched if inner else None,  # Python, import ray, ray.init
        "exit_s": wall - (inner["finished_at"] - launched) if inner else None,
        **{key: inner.get(key) for key in ("import_s", "init_s", "fit_s", "shutdown_s", "in_process_s")},
        "trials_ok": inner.get("trials_ok"),
        "stdout_lines": len(lines),
        "leftover_processes": leftovers,
        "stderr_tail": _tail(tmp / f"{variant}.stderr") if rc != 0 else "",
    }


def _tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def _warm_up() -> None:
    """Import the heavy modules once so the first timed variant does not pay a cold disk cache."""
    subprocess.run([sys.executable, "-c", "import ray.tune, raytuner.cli"], cwd=ROOT, check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def machine() -> dict[str, Any]:
    def version(name: str) -> str | None:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "ray": version("ray"),
        "raytuner": version("raytuner"),
    }


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return None


def _median(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def summarise(runs: list[dict[str, Any]], trials: int) -> dict[str, dict[str, Any]]:
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
            "per_trial_wall_ms": None if wall is None else 1000 * wall / trials,
            "per_trial_run_ms": None if run_s is None else 1000 * run_s / trials,
            "trials_ok": min((run["trials_ok"] or 0) for run in mine),
            "all_rc_zero": all(run["rc"] == 0 for run in mine),
        }
    return summary


def ratios(summary: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """raytuner / peer for each peer: below 1 means raytuner took less time."""
    out: dict[str, dict[str, float | None]] = {}
    ours = summary.get("raytuner")
    if ours is None:
        return out
    for peer in PEERS:
        theirs = summary.get(peer)
        if theirs is None:
            continue
        out[peer] = {
            key: (ours[key] / theirs[key]) if ours[key] and theirs[key] else None for key in ("wall_s", "run_s")
        }
    return out


def markdown(report: dict[str, Any]) -> str:
    def fmt(value: Any, spec: str = ".2f") -> str:
        return "-" if value is None else format(value, spec)

    trials = report["trials"]
    summary, rat = report["summary"], report["ratios"]
    m = report["machine"]
    rows = [
        f"# Overhead: {trials} trivial trials, {CPUS} at a time, 1 CPU each",
        "",
        f"Machine: {m['cpu_count']} CPUs ({m['cpu_model']}), Python {m['python']}, Ray {m['ray']}, "
        f"raytuner {m['raytuner']}; {report['repeats']} repeat(s), medians; {report['date']}.",
        "",
        "| variant | wall s | start-up s | run s | exit s | per trial (wall) ms | per trial (run) ms "
        "| trials ok | wall: raytuner / this | run: raytuner / this |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for variant in VARIANTS:
        row = summary.get(variant)
        if row is None:
            continue
        r = rat.get(variant, {})
        rows.append(
            f"| {variant} | {fmt(row['wall_s'])} | {fmt(row['startup_s'])} "
            f"| {fmt(row['run_s'])} | {fmt(row['exit_s'])} "
            f"| {fmt(row['per_trial_wall_ms'], '.1f')} | {fmt(row['per_trial_run_ms'], '.1f')} "
            f"| {row['trials_ok']}/{trials}{'' if row['all_rc_zero'] else ' (rc!=0)'} "
            f"| {fmt(r.get('wall_s')) if variant != 'raytuner' else '1.00'} "
            f"| {fmt(r.get('run_s')) if variant != 'raytuner' else '1.00'} |"
        )
    rows += [
        "",
        "wall: the whole subprocess. start-up: launch -> the run starts (Python, imports, ray.init). "
        "run: raytuner's experiment_started -> experiment_finished events; for the peers "
        "Tuner built + fit + ray.shutdown(). exit: the rest (interpreter exit, raytuner's summary). "
        "Ratios below 1: raytuner took less time.",
    ]
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=100, help="trials per variant (default 100)")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder for overhead.{md,json}")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each variant; the table shows medians")
    parser.add_argument("--only", choices=VARIANTS, action="append", help="run only this variant (repeatable)")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds before a variant is killed")
    parser.add_argument("--keep", action="store_true", help="keep the temporary storage and logs")
    parser.add_argument("--peer", choices=PEERS, help=argparse.SUPPRESS)  # child process entry
    parser.add_argument("--storage", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.peer:
        peer_main(args.peer, args.trials, args.storage)
        return 0

    variants = [v for v in VARIANTS if not args.only or v in args.only]
    tmp = Path(tempfile.mkdtemp(prefix="raytuner-overhead-"))
    runs: list[dict[str, Any]] = []
    _warm_up()
    try:
        for repeat in range(args.repeats):
            for variant in variants:
                work = tmp / f"{repeat}"
                work.mkdir(exist_ok=True)
                print(f"[{repeat + 1}/{args.repeats}] {variant}: {args.trials} trials ...", file=sys.stderr, flush=True)
                if variant == "raytuner":
                    run = run_raytuner(args.trials, work, args.timeout)
                else:
                    run = run_peer(variant, args.trials, work, args.timeout)
                run["repeat"] = repeat
                runs.append(run)
                run_s = None if run["run_s"] is None else round(run["run_s"], 2)
                print(
                    f"    wall {run['wall_s']:.2f}s, run {run_s}s, rc {run['rc']}, trials ok {run['trials_ok']}",
                    file=sys.stderr,
                    flush=True,
                )
                if run["rc"] != 0:
                    print(run["stderr_tail"], file=sys.stderr)
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    summary = summarise(runs, args.trials)
    report = {
        "benchmark": "overhead",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "trials": args.trials,
        "concurrency": CPUS,
        "cpus_per_trial": 1,
        "repeats": args.repeats,
        "machine": machine(),
        "summary": summary,
        "ratios": ratios(summary),
        "runs": runs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    table = markdown(report)
    (args.out / "overhead.md").write_text(table)
    (args.out / "overhead.json").write_text(json.dumps(report, indent=2) + "\n")
    print(table)
    return 0 if all(run["rc"] == 0 for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
