"""The command line's own latency: ``raytuner --help``, and launch to the first trial running.

* ``raytuner --help``: a fresh process each time (imports included), median of 5 after
  one untimed warm-up run; the target is under 0.5 s.
* ``python -c "import raytuner"``: the Python API's import, measured the same way (it loads
  neither Ray, torch, pyarrow nor HyperOpt); the same target.
* Launch to first trial: from starting ``raytuner run --json`` (2 trivial trials) to its first
  ``trial_started`` event, with the parts: launch -> experiment_started (Python, imports,
  spec, Ray start) and experiment_started -> trial_started (Tuner, first actor). Median of 3,
  for ``raytuner`` (Ray backend) and ``raytuner-inline`` (``--set execution.backend=inline``: no
  Ray to start, the first trial a thread), interleaved.

    .venv/bin/python benchmarks/cli_timing.py [--only raytuner-inline] [--startup-only]
"""

from __future__ import annotations

import argparse
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
VARIANTS = tuple(overhead.RAYTUNER_VARIANTS)  # launch -> first trial for raytuner on each backend
PARTS = ("to_first_trial_s", "to_experiment_started_s", "started_to_first_trial_s")


def help_times(repeats: int = 5) -> list[float]:
    return _fresh_process_times([*raytuner_argv(), "--help"], repeats)


def import_times(repeats: int = 5) -> list[float]:
    return _fresh_process_times([sys.executable, "-c", "import raytuner"], repeats)


def _fresh_process_times(argv: list[str], repeats: int) -> list[float]:
    subprocess.run(argv, cwd=ROOT, capture_output=True, check=True)  # warm the disk cache, untimed
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times


def first_trial(tmp: Path, variants: tuple[str, ...] = VARIANTS, repeats: int = 3) -> dict[str, list[dict[str, Any]]]:
    """Launch -> first trial_started, ``repeats`` times for each variant, interleaved (a slow
    minute on a shared machine then hits every variant alike)."""
    runs: dict[str, list[dict[str, Any]]] = {variant: [] for variant in variants}
    for i in range(repeats):
        for variant in variants:
            work = tmp / f"first-{i}"
            work.mkdir(parents=True, exist_ok=True)
            runs[variant].append(_first_trial_once(work, variant))
    return runs


def _first_trial_once(work: Path, variant: str) -> dict[str, Any]:
    run = overhead.run_raytuner(2, 1, work, 600, variant=variant)
    events = run.pop("events")
    started = next((e["time"] for e in events if e["event"] == "experiment_started"), None)
    first = next((e["time"] for e in events if e["event"] == "trial_started"), None)
    launched = run["launched"]
    return {
        "rc": run["rc"],
        "ray_started": run["ray_started"],
        "to_first_trial_s": None if first is None else first - launched,
        "to_experiment_started_s": None if started is None else started - launched,
        "started_to_first_trial_s": None if first is None or started is None else first - started,
    }


def _median(values: list[Any]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def measure(tmp: Path, variants: tuple[str, ...] = VARIANTS) -> dict[str, Any]:
    """``--help`` and ``import raytuner`` (no variant: the same for both backends) and launch ->
    first trial for each variant; ``first_trial`` and ``first_trial_median`` are keyed by variant."""
    print(f"cli: raytuner --help x 5, import raytuner x 5, launch -> first trial x 3 for {', '.join(variants)} ...",
          file=sys.stderr, flush=True)  # fmt: skip
    helps = help_times()
    imports = import_times()
    firsts = first_trial(tmp, variants)
    return {
        "help_s": helps,
        "help_median_s": statistics.median(helps),
        "help_target_s": HELP_TARGET_S,
        "import_s": imports,
        "import_median_s": statistics.median(imports),
        "first_trial": firsts,
        "first_trial_median": {variant: {key: _median([r[key] for r in runs]) for key in PARTS}
                               for variant, runs in firsts.items()},
    }  # fmt: skip


def table(result: dict[str, Any]) -> list[str]:
    helps = ", ".join(f"{t:.2f}" for t in result["help_s"])
    imports = ", ".join(f"{t:.2f}" for t in result["import_s"])
    lines = [
        "| measurement | median s | each s | target |",
        "|---|---:|---|---|",
        f"| `raytuner --help` (fresh process) | {result['help_median_s']:.3f} | {helps} | < {HELP_TARGET_S} s |",
        f"| `python -c \"import raytuner\"` (fresh process) | {result['import_median_s']:.3f} | {imports} "
        f"| < {HELP_TARGET_S} s |",
    ]
    for variant, runs in result["first_trial"].items():
        median = result["first_trial_median"][variant]
        inline = variant == overhead.INLINE
        flag = overhead.RAY_STARTED if inline and any(r.get("ray_started") for r in runs) else ""
        start = "Python, imports, spec" + ("" if inline else ", Ray start")
        lines += [
            f"| {variant}{flag}: launch -> first trial running | {fmt(median['to_first_trial_s'])} "
            f"| {', '.join(fmt(r['to_first_trial_s']) for r in runs)} | - |",
            f"| of which launch -> experiment started ({start}) | {fmt(median['to_experiment_started_s'])} | | |",
            f"| of which experiment started -> first trial started | {fmt(median['started_to_first_trial_s'])} | | |",
        ]
    return [*lines, "", LEGEND] if result["first_trial"] else lines


LEGEND = (
    "raytuner: `raytuner run --json` of 2 trivial trials (Ray backend); raytuner-inline: the same with "
    "`--set execution.backend=inline` (no Ray started, the first trial a thread of the raytuner process). "
    "(Ray started: not inline): a Ray session appeared in the inline run's RAY_TMPDIR, so that row measured "
    "the Ray backend."
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=VARIANTS, action="append", help="launch -> first trial only for this variant")
    parser.add_argument("--startup-only", action="store_true", help="only --help and import raytuner: no run")
    args = parser.parse_args(argv)
    variants = () if args.startup_only else tuple(v for v in VARIANTS if not args.only or v in args.only)
    with tempfile.TemporaryDirectory(prefix="raytuner-cli-") as tmp:
        result = measure(Path(tmp), variants)
    print("\n".join(table(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
