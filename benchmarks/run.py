"""Every performance comparison in one run, on one machine, in one table.

    .venv/bin/python benchmarks/run.py [--sections overhead,search,scale,throughput,cli] [--quick]

Sections (each a module here, runnable on its own too):

* ``overhead``   (overhead.py): N trivial trials x R reports through ``raytuner run`` against plain
  Ray Tune with its defaults, hand-tuned Ray Tune and Optuna in-process, same parallelism.
* ``search``     (search_efficiency.py): the digits MLP, best validation accuracy over wall time
  for optuna_tpe+ASHA (raytuner's default), hyperopt+ASHA, random+FIFO, PBT and Optuna TPE +
  successive halving.
* ``scale``      (scale.py): 10,000 trials in one experiment with the driver's memory sampled;
  export of 1,000,000 result rows (export_scale.py).
* ``throughput`` (throughput.py): Ray Tune's bookkeeping and result-throughput release-test shapes.
* ``cli``        (cli_timing.py): ``raytuner --help`` and launch -> first trial running.

Writes ``benchmarks/results/latest.md`` and ``latest.json`` (every raw measurement, the machine,
the load average before and after each section). ``--quick`` shrinks every section (minutes,
not an hour) for trying the harness, ``--quick scale,search`` only those; a shrunk section says
so in its heading and gives its sizes.
Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cli_timing
import overhead
import scale
import search_efficiency
import throughput
from procs import HERE, load_average, machine, warm_up

SECTIONS = ("overhead", "search", "scale", "throughput", "cli")
# Ray Tune's defaults start an actor per trial: ~1.5 s a trial here, so 1000 trials would take
# about half an hour (three times that for medians); that variant runs once, at the smaller N
# only (said in the table).
DEFAULTS_MAX_TRIALS = 100


FULL: dict[str, Any] = {
    "overhead": [(100, 10), (1000, 10)],
    "overhead_repeats": 3,
    "search": {"seeds": [0, 1, 2], "trials": 48},
    "scale": {"trials": 10_000, "export_trials": 10_000, "peer_trials": 3000},
    "throughput": {"scale": 1.0},
}
QUICK: dict[str, Any] = {
    "overhead": [(20, 10)],
    "overhead_repeats": 1,
    "search": {"seeds": [0], "trials": 12},
    "scale": {"trials": 1000, "export_trials": 1000, "peer_trials": 300},
    "throughput": {"scale": 0.1},
}


def plan(quick: set[str]) -> dict[str, Any]:
    """The sizes of every section: full, or quick for the sections named in ``quick``."""
    return {name: (QUICK if name.split("_")[0] in quick else FULL)[name] for name in FULL}  # overhead_repeats: overhead


def run_overhead(tmp: Path, sizes: list[tuple[int, int]], repeats: int) -> dict[str, Any]:
    """Every size; each variant ``repeats`` times, interleaved (Ray's defaults once: minutes a run)."""
    results = []
    for trials, reports in sizes:
        variants = [v for v in overhead.VARIANTS if v != "ray-defaults" or trials <= DEFAULTS_MAX_TRIALS]
        results.append(overhead.measure(trials, reports, variants, tmp / "overhead", repeats=repeats,
                                        once=("ray-defaults",)))  # fmt: skip
    return {"sizes": results}


def overhead_table(result: dict[str, Any]) -> list[str]:
    lines = [overhead.TABLE_HEAD]
    for size in result["sizes"]:
        lines += overhead.table_rows(size)
        if "ray-defaults" not in size["summary"]:
            lines.append(f"| {size['trials']} x {size['reports']} | ray-defaults | not run: an actor per trial, "
                         f"about half an hour a run here (see {DEFAULTS_MAX_TRIALS} trials) | | | | | | | |")  # fmt: skip
    return [*lines, "", overhead.LEGEND]


SECTION_TITLES = {
    "overhead": "1. Overhead: trivial trials, 2 at a time, 1 CPU each",
    "search": "2. Search efficiency: digits MLP, 2 trials at a time",
    "scale": "3. Scale: 10,000 trials in one experiment; export of 1,000,000 rows",
    "throughput": "4. Bookkeeping and result throughput (Ray Tune's release-test shapes, scaled to 2 CPUs)",
    "cli": "5. Command line",
}


def runners(sizes: dict[str, Any]) -> dict[str, tuple[Callable[[Path], dict[str, Any]], Callable[[dict[str, Any]], list[str]]]]:
    return {
        "overhead": (lambda tmp: run_overhead(tmp, sizes["overhead"], sizes["overhead_repeats"]), overhead_table),
        "search": (lambda tmp: search_efficiency.measure(sizes["search"]["seeds"], sizes["search"]["trials"], tmp),
                   lambda r: [*search_efficiency.table(r), "", search_efficiency.LEGEND]),
        "scale": (lambda tmp: scale.measure(tmp, **sizes["scale"]), scale.table),
        "throughput": (lambda tmp: throughput.measure(tmp, **sizes["throughput"]), throughput.table),
        "cli": (cli_timing.measure, cli_timing.table),
    }  # fmt: skip


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        "# raytuner performance",
        "",
        f"Measured {report['date']} on {m['cpu_count']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB memory, "
        f"{m['platform']}; Python {m['python']}, Ray {m['ray']}, raytuner {m['raytuner']}, Optuna {m['optuna']}, "
        f"torch {m['torch']}; git {m['git_revision']}.",
        "",
        f"Command: `{report['command']}` ({report['total_s'] / 60:.1f} min in all).",
    ]
    for name, section in report["sections"].items():
        shrunk = " (QUICK: shrunk sizes, see below)" if name in report["quick"] else ""
        lines += ["", f"## {SECTION_TITLES[name]}{shrunk}", ""]
        if shrunk or (name in FULL and report["sizes"][name] != FULL[name]):
            lines += [f"Sizes: `{json.dumps(report['sizes'][name])}` instead of `{json.dumps(FULL[name])}`.", ""]
        lines.append(f"Load average (1/5/15 min) before: {section['load_before']}, after: {section['load_after']}; "
                     f"{section['seconds'] / 60:.1f} min.")  # fmt: skip
        lines.append("")
        if section.get("error"):
            lines += ["Failed:", "", "```", section["error"].strip()[-1500:], "```"]
        else:
            lines += section["table"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, from {', '.join(SECTIONS)}")
    parser.add_argument("--quick", nargs="?", const=",".join(SECTIONS), default="", metavar="SECTIONS",
                        help="small sizes (every section, or only those listed): try the harness in minutes")  # fmt: skip
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder for latest.md and latest.json")
    parser.add_argument("--overhead-sizes", metavar="NxR,...", help="overhead sizes instead of 100x10,1000x10")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.sections.split(",") if s.strip()]
    quick = {s.strip() for s in args.quick.split(",") if s.strip()}
    for option, names in (("--sections", chosen), ("--quick", quick)):
        unknown = sorted(set(names) - set(SECTIONS))
        if unknown:
            parser.error(f"{option}: unknown section {', '.join(unknown)}; expected some of {', '.join(SECTIONS)}")

    sizes = plan(quick)
    if args.overhead_sizes:
        try:
            sizes["overhead"] = [tuple(int(n) for n in size.split("x")) for size in args.overhead_sizes.split(",")]
        except ValueError:
            parser.error(f"--overhead-sizes: expected sizes like 100x10,1000x10, found {args.overhead_sizes!r}")
    table_of = runners(sizes)
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "command": " ".join([".venv/bin/python", "benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])]),
        "quick": sorted(quick & set(chosen)),
        "sizes": sizes,
        "machine": machine(),
        "sections": {},
    }
    began = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="raytuner-bench-"))
    warm_up()
    try:
        for name in chosen:
            measure, table = table_of[name]
            section: dict[str, Any] = {"load_before": load_average()}
            start = time.perf_counter()
            try:
                section["result"] = measure(tmp / name)
                section["table"] = table(section["result"])
            except Exception:  # noqa: BLE001 - one failed section must not lose the others
                section["error"] = traceback.format_exc()
                print(section["error"], file=sys.stderr)
            section["seconds"] = time.perf_counter() - start
            section["load_after"] = load_average()
            report["sections"][name] = section
            report["total_s"] = time.perf_counter() - began
            _write(args.out, report)  # after every section: a long run that dies keeps what it measured
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = _write(args.out, report)
    print(text)
    return 1 if any("error" in s for s in report["sections"].values()) else 0


def _write(out: Path, report: dict[str, Any]) -> str:
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(report)
    (out / "latest.md").write_text(text)
    (out / "latest.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    return text


if __name__ == "__main__":
    sys.exit(main())
