"""The command line's own latency: ``raytuner --help``, and launch to the first trial running.

* ``raytuner --help``: a fresh process each time (imports included), median of 5 after
  one untimed warm-up run; the target is under 0.5 s.
* Launch to first trial: from starting ``raytuner run --json`` (2 trivial trials) to its first
  ``trial_started`` event, with the parts: launch -> experiment_started (Python, imports,
  spec, Ray start) and experiment_started -> trial_started (Tuner, first actor). Median of 3.

    .venv/bin/python benchmarks/cli_timing.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import overhead
from procs import ROOT, fmt, raytuner_argv

HELP_TARGET_S = 0.5


def help_times(repeats: int = 5) -> list[float]:
    argv = [*raytuner_argv(), "--help"]
    subprocess.run(argv, cwd=ROOT, capture_output=True, check=True)  # warm the disk cache, untimed
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times


def first_trial(tmp: Path, repeats: int = 3) -> list[dict[str, Any]]:
    runs = []
    for i in range(repeats):
        work = tmp / f"first-{i}"
        work.mkdir(parents=True)
        run = overhead.run_raytuner(2, 1, work, 600)
        events = run.pop("events")
        started = next((e["time"] for e in events if e["event"] == "experiment_started"), None)
        first = next((e["time"] for e in events if e["event"] == "trial_started"), None)
        launched = run["launched"]
        runs.append({
            "rc": run["rc"],
            "to_first_trial_s": None if first is None else first - launched,
            "to_experiment_started_s": None if started is None else started - launched,
            "started_to_first_trial_s": None if first is None or started is None else first - started,
        })  # fmt: skip
    return runs


def _median(values: list[Any]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def measure(tmp: Path) -> dict[str, Any]:
    print("cli: raytuner --help x 5, launch -> first trial x 3 ...", file=sys.stderr, flush=True)
    helps = help_times()
    firsts = first_trial(tmp)
    return {
        "help_s": helps,
        "help_median_s": statistics.median(helps),
        "help_target_s": HELP_TARGET_S,
        "first_trial": firsts,
        **{f"{key}_median": _median([r[key] for r in firsts])
           for key in ("to_first_trial_s", "to_experiment_started_s", "started_to_first_trial_s")},
    }  # fmt: skip


def table(result: dict[str, Any]) -> list[str]:
    helps = ", ".join(f"{t:.2f}" for t in result["help_s"])
    return [
        "| measurement | median s | each s | target |",
        "|---|---:|---|---|",
        f"| `raytuner --help` (fresh process) | {result['help_median_s']:.3f} | {helps} | < {HELP_TARGET_S} s |",
        f"| launch -> first trial running | {fmt(result['to_first_trial_s_median'])} "
        f"| {', '.join(fmt(r['to_first_trial_s']) for r in result['first_trial'])} | - |",
        f"| of which launch -> experiment started (Python, imports, spec, Ray start) "
        f"| {fmt(result['to_experiment_started_s_median'])} | | |",
        f"| of which experiment started -> first trial started | {fmt(result['started_to_first_trial_s_median'])} | | |",
    ]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="raytuner-cli-") as tmp:
        result = measure(Path(tmp))
    print("\n".join(table(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
