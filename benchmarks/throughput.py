"""Bookkeeping and result throughput: Ray Tune's own release-test shapes, scaled to this machine.

Ray's release tests ``tune_tests/scalability_tests`` time N trials that do nothing but sleep and
report at a fixed rate, and compare the time with the theoretical minimum (Ray's thresholds:
1.28x for bookkeeping, 1.2x for result throughput). Scaled to 2 CPUs, through ``raytuner run``
(the built-in analytic objective with ``sleep_s`` per report):

* bookkeeping: 200 trials x 1 s (one report each), 2 at a time: minimum 200 x 1 s / 2 = 100 s;
* throughput: 2 trials x 60 s at 50 reports per second (3000 reports each): minimum 60 s.

The ratio uses the run (raytuner's experiment_started -> experiment_finished events: Tuner,
trials, Ray shut down, Parquet written), as Ray's test times ``tune.run``; the whole command's
ratio (Python and Ray start-up included) is shown next to it. Each shape also runs through plain
Ray Tune hand-tuned (overhead.py's ``ray-tuned`` peer: Tuner + fit + shutdown, the same span),
so the ratio can be read against Ray itself on the same machine in the same run.

    .venv/bin/python benchmarks/throughput.py [--scale 1.0]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import overhead
from procs import fmt

CPUS = overhead.CPUS
VARIANTS = ("raytuner", "ray-tuned")


def shapes(scale: float = 1.0) -> list[dict[str, Any]]:
    """The two shapes; ``scale`` < 1 shortens both (quick runs), keeping the rates."""
    n_book = max(2, round(200 * scale))
    seconds = max(2.0, 60.0 * scale)
    return [
        {"name": "bookkeeping", "trials": n_book, "reports": 1, "sleep_s": 1.0,
         "minimum_s": n_book * 1.0 / CPUS, "ray_threshold": 1.28},
        {"name": "throughput", "trials": 2, "reports": round(seconds * 50), "sleep_s": 0.02,
         "minimum_s": seconds, "ray_threshold": 1.2},
    ]  # fmt: skip


def measure(tmp: Path, *, scale: float = 1.0, timeout: float = 1800) -> dict[str, Any]:
    """Each shape through ``raytuner run`` and through plain Ray Tune hand-tuned (overhead.py's
    ``ray-tuned`` peer, its trials sleeping the same before each report)."""
    rows = []
    for shape in shapes(scale):
        for variant in VARIANTS:
            print(f"throughput: {shape['name']} ({shape['trials']} trials x {shape['reports']} reports), {variant} ...",
                  file=sys.stderr, flush=True)  # fmt: skip
            work = tmp / shape["name"] / variant
            work.mkdir(parents=True, exist_ok=True)
            if variant == "raytuner":
                run = overhead.run_raytuner(
                    shape["trials"], shape["reports"], work, timeout, (f"trainable.sleep_s={shape['sleep_s']}",)
                )
                run.pop("events")
            else:
                run = overhead.run_peer(variant, shape["trials"], shape["reports"], work, timeout, shape["sleep_s"])
            run_s = run["run_s"]
            row = {
                **shape,
                **run,
                "ratio_run": run_s / shape["minimum_s"] if run_s else None,
                "ratio_wall": run["wall_s"] / shape["minimum_s"],
            }
            rows.append(row)
            print(f"    run {fmt(run_s)}s, ratio {fmt(row['ratio_run'], '.3f')}, rc {run['rc']}", file=sys.stderr, flush=True)
    return {"scale": scale, "rows": rows}


def table(result: dict[str, Any]) -> list[str]:
    lines = [
        "| shape | variant | trials x reports | minimum s | run s | run / minimum | wall s | wall / minimum "
        "| Ray's threshold | trials ok |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['name']} | {row.get('variant', 'raytuner')} | {row['trials']} x {row['reports']} "
            f"({row['sleep_s']:g} s each) | {row['minimum_s']:.0f} "
            f"| {fmt(row['run_s'])} | **{fmt(row['ratio_run'], '.3f')}** | {fmt(row['wall_s'])} "
            f"| {fmt(row['ratio_wall'], '.3f')} | {row['ray_threshold']} | {row['trials_ok']}/{row['trials']} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="shorten both shapes (0.1: 20 trials, 6 s)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="raytuner-throughput-") as tmp:
        result = measure(Path(tmp), scale=args.scale)
    print("\n".join(table(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
