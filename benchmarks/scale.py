"""Scale: one experiment of 10,000 trivial trials, the driver's memory over time; export of 1,000,000 rows.

The driver (the ``raytuner run`` process) is sampled every second with psutil while the
experiment runs: its resident memory against the number of trials finished by then (from the
``--json`` events). Memory that grows per trial (ray-project/ray issue 64231) shows as a
slope in MB per 1000 trials, fitted over the trials after the first 10% (start-up excluded).
The same experiment runs again with ``--set execution.backend=inline`` (``raytuner-inline``: the
trials in threads of the driver, no Ray), sampled the same way; its driver holds the trials
themselves, where the Ray backend's run in worker processes that are not sampled.
Plain Ray Tune hand-tuned (overhead.py's ``ray-tuned`` peer) runs the same trivial trials
(3,000 by default), sampled the same way, for the same slope of Ray's own driver.
The export part calls benchmarks/export_scale.py (10,000 trials x 100 reports = 1,000,000
result rows, exported to Parquet, CSV and JSON lines, each in a fresh process) and keeps its
JSON.

    .venv/bin/python benchmarks/scale.py [--trials 10000] [--export-trials 10000] [--only raytuner-inline]
"""

from __future__ import annotations

import argparse
import bisect
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import overhead
from procs import HERE, fmt

# The drivers sampled: raytuner on each backend at ``trials``, plain Ray Tune at ``peer_trials``.
DRIVERS = ("raytuner", "raytuner-inline", "ray-tuned")
# Seconds between RSS samples. An inline run of trivial trials lasts seconds, not minutes (3,000 in
# about 4 s in a smoke run): at one sample a second its slope would rest on a dozen points.
SAMPLE_EVERY_S = {"raytuner": 1.0, "raytuner-inline": 0.2, "ray-tuned": 1.0}


class RssSampler:
    """Samples one process's resident memory every ``every_s`` seconds on a thread."""

    def __init__(self, every_s: float = 1.0) -> None:
        self.every_s = every_s
        self.samples: list[tuple[float, float]] = []  # (epoch seconds, MB)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, pid: int) -> None:
        import psutil

        process = psutil.Process(pid)

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.samples.append((time.time(), process.memory_info().rss / 2**20))
                except psutil.Error:  # the driver has exited
                    return
                self._stop.wait(self.every_s)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def _slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of ys on xs."""
    if len(xs) < 3:
        return None
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return None if var == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


def memory_profile(samples: list[tuple[float, float]], ended: list[float], trials: int) -> dict[str, Any]:
    """RSS at the start, middle and end of the trials, and its slope per 1000 trials finished."""
    ended = sorted(ended)
    done_at = [(bisect.bisect_right(ended, t), mb) for t, mb in samples]
    running = [(n, mb) for n, mb in done_at if 0 < n < trials] or done_at

    def near(fraction: float) -> float | None:
        goal = fraction * trials
        return min(running, key=lambda p: abs(p[0] - goal))[1] if running else None

    fit = [(n, mb) for n, mb in running if n >= 0.1 * trials]
    slope = _slope([n for n, _ in fit], [mb for _, mb in fit])
    return {
        "rss_start_mb": near(0.0),
        "rss_middle_mb": near(0.5),
        "rss_end_mb": near(1.0),
        "rss_peak_mb": max((mb for _, mb in samples), default=None),
        "slope_mb_per_1000_trials": None if slope is None else slope * 1000,
        "samples": len(samples),
        "series": [(round(t - samples[0][0], 1), n, round(mb, 1)) for (t, mb), (n, _) in zip(samples, done_at, strict=True)]
        if samples else [],  # fmt: skip
    }


def measure_trials(trials: int, tmp: Path, timeout: float = 7200, variant: str = "raytuner") -> dict[str, Any]:
    """``raytuner run`` of ``trials`` one-report trials (``variant``: the backend, a key of
    overhead.RAYTUNER_VARIANTS), its driver sampled; trials end at their events' times."""
    print(f"scale: {trials} trials, {variant} ...", file=sys.stderr, flush=True)
    sampler = RssSampler(SAMPLE_EVERY_S[variant])
    work = tmp / f"trials-{trials}"
    work.mkdir(parents=True, exist_ok=True)
    try:
        run = overhead.run_raytuner(trials, 1, work, timeout, on_start=sampler.start, variant=variant)
    finally:
        sampler.stop()
    events = run.pop("events")
    ended = [e["time"] for e in events if e["event"] in ("trial_completed", "trial_stopped", "trial_error")]
    memory = memory_profile(sampler.samples, ended, trials)
    print(f"    run {fmt(run['run_s'])}s, rss {fmt(memory['rss_start_mb'], '.0f')} -> {fmt(memory['rss_end_mb'], '.0f')} MB, "
          f"slope {fmt(memory['slope_mb_per_1000_trials'])} MB/1000 trials", file=sys.stderr, flush=True)  # fmt: skip
    return {"trials": trials, "sample_every_s": sampler.every_s, **run, **memory}


def measure_peer(trials: int, tmp: Path, timeout: float = 7200) -> dict[str, Any]:
    """The same experiment through plain Ray Tune hand-tuned (overhead.py's ``ray-tuned`` peer),
    its process sampled the same way. It prints no event per trial, so trials are taken to end
    at an even rate over its run span (a steady stream of identical trials)."""
    print(f"scale: {trials} trials, plain Ray Tune (ray-tuned) ...", file=sys.stderr, flush=True)
    sampler = RssSampler(SAMPLE_EVERY_S["ray-tuned"])
    work = tmp / f"ray-tuned-{trials}"
    work.mkdir(parents=True, exist_ok=True)
    try:
        run = overhead.run_peer("ray-tuned", trials, 1, work, timeout, on_start=sampler.start)
    finally:
        sampler.stop()
    start, end = run.get("started_at"), run.get("finished_at")
    ended = [] if start is None or end is None else [start + (i + 1) * (end - start) / trials for i in range(trials)]
    memory = memory_profile(sampler.samples, ended, trials)
    print(f"    run {fmt(run['run_s'])}s, rss {fmt(memory['rss_start_mb'], '.0f')} -> {fmt(memory['rss_end_mb'], '.0f')} MB, "
          f"slope {fmt(memory['slope_mb_per_1000_trials'])} MB/1000 trials", file=sys.stderr, flush=True)  # fmt: skip
    return {"trials": trials, "sample_every_s": sampler.every_s, **run, **memory}


def measure_export(trials: int, reports: int, tmp: Path) -> dict[str, Any]:
    """benchmarks/export_scale.py as it is run by hand; its JSON record."""
    print(f"scale: export of {trials} x {reports} rows ...", file=sys.stderr, flush=True)
    output = tmp / "export_scale.json"
    argv = [sys.executable, str(HERE / "export_scale.py"), "--trials", str(trials), "--reports", str(reports),
            "--ray-trials", str(max(10, trials // 50)), "--output", str(output)]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    record: dict[str, Any] = json.loads(output.read_text()) if output.exists() else {}
    return {"command": " ".join(argv), "rc": done.returncode, "wall_s": time.perf_counter() - started,
            "rows": trials * reports, "stderr_tail": done.stderr[-2000:] if done.returncode else "", **record}  # fmt: skip


def measure(tmp: Path, *, trials: int = 10_000, export_trials: int = 10_000, reports: int = 100,
            peer_trials: int = 3000, drivers: tuple[str, ...] = DRIVERS) -> dict[str, Any]:  # fmt: skip
    """raytuner on each backend at ``trials``; plain Ray Tune at ``peer_trials`` (0: not run);
    the export. A driver not in ``drivers`` is None (not run)."""
    return {
        "experiment": measure_trials(trials, tmp) if "raytuner" in drivers else None,
        "inline": measure_trials(trials, tmp, variant=overhead.INLINE) if overhead.INLINE in drivers else None,
        "peer": measure_peer(peer_trials, tmp) if peer_trials and "ray-tuned" in drivers else None,
        "export": measure_export(export_trials, reports, tmp),
    }


def table(result: dict[str, Any]) -> list[str]:
    lines = [
        "| driver | trials | run s | wall s | per trial (run) ms | driver RSS start / middle / end MB | peak MB "
        "| slope MB per 1000 trials | trials ok |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    drivers = (("raytuner", result.get("experiment")), (overhead.INLINE, result.get("inline")),
               ("plain Ray Tune (ray-tuned)", result.get("peer")))  # fmt: skip
    for name, e in drivers:
        if e is None:
            continue
        flag = overhead.RAY_STARTED if name == overhead.INLINE and e.get("ray_started") else ""
        lines.append(
            f"| {name}{flag} | {e['trials']} | {fmt(e['run_s'])} | {fmt(e['wall_s'])} "
            f"| {fmt(None if e['run_s'] is None else 1000 * e['run_s'] / e['trials'], '.1f')} "
            f"| {fmt(e['rss_start_mb'], '.0f')} / {fmt(e['rss_middle_mb'], '.0f')} / {fmt(e['rss_end_mb'], '.0f')} "
            f"| {fmt(e['rss_peak_mb'], '.0f')} | {fmt(e['slope_mb_per_1000_trials'])} | {e['trials_ok']}/{e['trials']} |"
        )
    lines += ["", LEGEND]
    x = result["export"]
    lines += ["", f"Export of {x['rows']:,} result rows (benchmarks/export_scale.py, rc {x['rc']}):", ""]
    lines += ["| source | format | trials | rows | seconds | peak RSS MB | output MB |", "|---|---|---:|---:|---:|---:|---:|"]
    for row in x.get("results", []):
        lines.append(
            f"| {row.get('source')} | {row.get('format')} | {row.get('trials')} | {row.get('rows')} "
            f"| {fmt(row.get('seconds'))} | {fmt(row.get('peak_rss_mb'), '.0f')} | {fmt(row.get('output_mb'), '.1f')} |"
        )
    return lines


LEGEND = (
    "raytuner: `raytuner run` (Ray backend): the driver process only, its trials run in Ray workers. "
    "raytuner-inline: the same with `--set execution.backend=inline`: the trials run in threads of the driver, "
    "so its RSS holds them too, sampled every 0.2 s (the others every second: they run for minutes, it for "
    "seconds). plain Ray Tune: the Python process calling Tuner.fit(). Slope: MB per 1000 "
    "trials finished, fitted after the first 10%. (Ray started: not inline): a Ray session appeared in the "
    "inline run's RAY_TMPDIR, so that row measured the Ray backend."
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--export-trials", type=int, default=10_000)
    parser.add_argument("--peer-trials", type=int, default=3000, help="plain Ray Tune's trials (0: not run)")
    parser.add_argument("--only", choices=DRIVERS, action="append", help="sample only this driver (repeatable)")
    args = parser.parse_args(argv)
    drivers = tuple(d for d in DRIVERS if not args.only or d in args.only)
    with tempfile.TemporaryDirectory(prefix="raytuner-scale-") as tmp:
        result = measure(Path(tmp), trials=args.trials, export_trials=args.export_trials, peer_trials=args.peer_trials,
                         drivers=drivers)  # fmt: skip
    print("\n".join(table(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
