"""Bookkeeping and result throughput: Ray Tune's own release-test shapes, scaled to this machine.

Ray's release tests ``tune_tests/scalability_tests`` time N trials that do nothing but sleep and
report at a fixed rate, and compare the time with the theoretical minimum (Ray's thresholds:
1.28x for bookkeeping, 1.2x for result throughput). Scaled to 2 CPUs, through ``raytuner run``
(the built-in analytic objective with ``sleep_s`` per report):

* bookkeeping: 200 trials x 1 s (one report each), 2 at a time: minimum 200 x 1 s / 2 = 100 s;
* throughput: 2 trials x 60 s at 50 reports per second (3000 reports each): minimum 60 s.

The ratio uses the run (raytuner's experiment_started -> experiment_finished events: Tuner,
trials, Ray shut down, Parquet written), as Ray's test times ``tune.run``; the whole command's
ratio (Python and Ray start-up included) is shown next to it. Each shape also runs through
``raytuner run --set execution.backend=inline`` (``raytuner-inline``: the trials in threads of the
raytuner process, no Ray started) and through plain Ray Tune hand-tuned (overhead.py's
``ray-tuned`` peer: Tuner + fit + shutdown, the same span), so both backends' ratios can be read
against Ray itself on the same machine in the same run.

    .venv/bin/python benchmarks/throughput.py [--scale 1.0] [--only raytuner-inline --only ray-tuned]
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
VARIANTS = ("raytuner", "raytuner-inline", "ray-tuned")


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


def measure(tmp: Path, *, scale: float = 1.0, timeout: float = 1800,
            variants: tuple[str, ...] = VARIANTS) -> dict[str, Any]:  # fmt: skip
    """Each shape through ``raytuner run`` on either backend and through plain Ray Tune hand-tuned
    (overhead.py's ``ray-tuned`` peer, its trials sleeping the same before each report)."""
    rows = []
    for shape in shapes(scale):
        for variant in variants:
            print(f"throughput: {shape['name']} ({shape['trials']} trials x {shape['reports']} reports), {variant} ...",
                  file=sys.stderr, flush=True)  # fmt: skip
            work = tmp / shape["name"] / variant
            work.mkdir(parents=True, exist_ok=True)
            if variant in overhead.RAYTUNER_VARIANTS:
                sleep = (f"trainable.sleep_s={shape['sleep_s']}",)
                run = overhead.run_raytuner(shape["trials"], shape["reports"], work, timeout, sleep, variant=variant)
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
        variant = row.get("variant", "raytuner")
        flag = overhead.RAY_STARTED if variant == overhead.INLINE and row.get("ray_started") else ""
        lines.append(
            f"| {row['name']} | {variant}{flag} | {row['trials']} x {row['reports']} "
            f"({row['sleep_s']:g} s each) | {row['minimum_s']:.0f} "
            f"| {fmt(row['run_s'])} | **{fmt(row['ratio_run'], '.3f')}** | {fmt(row['wall_s'])} "
            f"| {fmt(row['ratio_wall'], '.3f')} | {row['ray_threshold']} | {row['trials_ok']}/{row['trials']} |"
        )
    return [*lines, "", LEGEND]


LEGEND = (
    "raytuner: `raytuner run` (Ray backend); raytuner-inline: the same with `--set execution.backend=inline` "
    "(trials in threads of the raytuner process, no Ray); ray-tuned: plain Ray Tune hand-tuned. run: "
    "experiment_started -> experiment_finished (for ray-tuned: Tuner built + fit + ray.shutdown()). "
    "(Ray started: not inline): a Ray session appeared in the inline run's RAY_TMPDIR, so that row measured "
    "the Ray backend."
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="shorten both shapes (0.1: 20 trials, 6 s)")
    parser.add_argument("--only", choices=VARIANTS, action="append", help="run only this variant (repeatable)")
    args = parser.parse_args(argv)
    variants = tuple(v for v in VARIANTS if not args.only or v in args.only)
    with tempfile.TemporaryDirectory(prefix="raytuner-throughput-") as tmp:
        result = measure(Path(tmp), scale=args.scale, variants=variants)
    print("\n".join(table(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
