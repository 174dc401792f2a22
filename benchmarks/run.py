"""Every performance comparison in one run, on one machine, in one table.

    .venv/bin/python benchmarks/run.py [--sections overhead,search,scale,throughput,cli,dashboard,auto] [--quick]
                                       [--variants raytuner-inline,ray-tuned]

Sections (each a module here, runnable on its own too):

* ``overhead``   (overhead.py): N trivial trials x R reports through ``raytuner run`` (Ray backend,
  and ``raytuner-inline``: ``--set execution.backend=inline``) against plain Ray Tune with its
  defaults, hand-tuned Ray Tune and Optuna in-process, same parallelism.
* ``search``     (search_efficiency.py): the digits MLP, best validation accuracy over wall time
  for optuna_tpe+ASHA (raytuner's default, on each backend), hyperopt+ASHA, random+FIFO, PBT and
  Optuna TPE + successive halving.
* ``scale``      (scale.py): 10,000 trials in one experiment with the driver's memory sampled, on
  each backend; export of 1,000,000 result rows (export_scale.py).
* ``throughput`` (throughput.py): Ray Tune's bookkeeping and result-throughput release-test shapes,
  on each backend and through plain Ray Tune.
* ``cli``        (cli_timing.py): ``raytuner --help``, ``import raytuner`` and launch -> first trial running, on each backend.
* ``dashboard``  (dashboard.py): ``raytuner dashboard`` serving 1,000 experiments, and one of 10,000 trials x 100
  reports (1,000,000 rows): time to first paint in headless Chromium, bytes, server peak memory; the peer is
  ``raytuner report`` of the same folder.
* ``auto``       (auto_search.py): ``search.algorithm: auto`` against every searcher, through raytuner: the
  analytic regret table (plus a conditional mixed space and a 24-dimensional one) and real tuning
  (digits MLP, digits CNN, diabetes MLP regressor; ASHA, 2 at once).

``--variants`` keeps only the named variants (search: methods) in every chosen section, to keep
a run short, e.g. ``--sections overhead,throughput,scale --variants raytuner-inline,ray-tuned``;
each chosen section must have at least one of them (``cli`` always times ``--help``).

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

import auto_search
import cli_timing
import dashboard
import overhead
import scale
import search_efficiency
import throughput
from procs import HERE, load_average, machine, warm_up

SECTIONS = ("overhead", "search", "scale", "throughput", "cli", "dashboard", "auto")
# Ray Tune's defaults start an actor per trial: ~1.5 s a trial here, so 1000 trials would take
# about half an hour (three times that for medians); that variant runs once, at the smaller N
# only (said in the table).
DEFAULTS_MAX_TRIALS = 100


# Every section's variants (search: its methods), the names --variants picks from.
VARIANTS: dict[str, tuple[str, ...]] = {
    "overhead": overhead.VARIANTS,
    "search": search_efficiency.METHODS,
    "scale": scale.DRIVERS,
    "throughput": throughput.VARIANTS,
    "cli": cli_timing.VARIANTS,
    "dashboard": dashboard.VARIANTS,
    "auto": auto_search.SEARCHERS,
}

FULL: dict[str, Any] = {
    "overhead": [(100, 10), (1000, 10)],
    "overhead_repeats": 3,
    "search": {"seeds": [0, 1, 2], "trials": 48},
    "scale": {"trials": 10_000, "export_trials": 10_000, "peer_trials": 3000},
    "throughput": {"scale": 1.0},
    "dashboard": {"experiments": 1000, "trials": 10_000, "reports": 100},
    "auto": {"analytic_seeds": 10, "evals": 100, "real_seeds": 10, "trials": 24},
}
QUICK: dict[str, Any] = {
    "overhead": [(20, 10)],
    "overhead_repeats": 1,
    "search": {"seeds": [0], "trials": 12},
    "scale": {"trials": 1000, "export_trials": 1000, "peer_trials": 300},
    "throughput": {"scale": 0.1},
    "dashboard": {"experiments": 50, "trials": 1000, "reports": 20},
    "auto": {"analytic_seeds": 2, "evals": 25, "real_seeds": 1, "trials": 6},
}


def plan(quick: set[str]) -> dict[str, Any]:
    """The sizes of every section: full, or quick for the sections named in ``quick``."""
    return {name: (QUICK if name.split("_")[0] in quick else FULL)[name] for name in FULL}  # overhead_repeats: overhead


def pick_variants(names: set[str], sections: list[str]) -> dict[str, tuple[str, ...]]:
    """Each section's variants that are in ``names`` (all of them when ``names`` is empty).

    Raises:
        ValueError: a name no section has, or a chosen section left with none.
    """
    if not names:
        return dict(VARIANTS)
    known = {v for variants in VARIANTS.values() for v in variants}
    unknown = sorted(names - known)
    if unknown:
        raise ValueError(f"unknown variant {', '.join(unknown)}; expected some of {', '.join(sorted(known))}")
    picked = {section: tuple(v for v in variants if v in names) for section, variants in VARIANTS.items()}
    for section in sections:
        if not picked[section]:
            raise ValueError(f"section {section} has none of {', '.join(sorted(names))} (its variants: "
                             f"{', '.join(VARIANTS[section])}); add one or leave {section} out of --sections")  # fmt: skip
    return picked


def run_overhead(tmp: Path, sizes: list[tuple[int, int]], repeats: int,
                 chosen: tuple[str, ...] = overhead.VARIANTS) -> dict[str, Any]:  # fmt: skip
    """Every size; each variant ``repeats`` times, interleaved (Ray's defaults once: minutes a run)."""
    results = []
    for trials, reports in sizes:
        variants = [v for v in chosen if v != "ray-defaults" or trials <= DEFAULTS_MAX_TRIALS]
        size = overhead.measure(trials, reports, variants, tmp / "overhead", repeats=repeats, once=("ray-defaults",))
        size["defaults_left_out"] = "ray-defaults" in chosen and "ray-defaults" not in variants
        results.append(size)
    return {"sizes": results}


def overhead_table(result: dict[str, Any]) -> list[str]:
    lines = [overhead.TABLE_HEAD]
    for size in result["sizes"]:
        lines += overhead.table_rows(size)
        if size.get("defaults_left_out"):
            lines.append(overhead.not_run_row(size["trials"], size["reports"], "ray-defaults",
                                              "not run: an actor per trial, about half an hour a run here "
                                              f"(see {DEFAULTS_MAX_TRIALS} trials)"))  # fmt: skip
    return [*lines, "", overhead.LEGEND]


SECTION_TITLES = {
    "overhead": "1. Overhead: trivial trials, 2 at a time, 1 CPU each",
    "search": "2. Search efficiency: digits MLP, 2 trials at a time",
    "scale": "3. Scale: 10,000 trials in one experiment; export of 1,000,000 rows",
    "throughput": "4. Bookkeeping and result throughput (Ray Tune's release-test shapes, scaled to 2 CPUs)",
    "cli": "5. Command line",
    "dashboard": "6. Dashboard: 1,000 experiments; 10,000 trials x 100 reports",
    "auto": "7. search.algorithm auto against every searcher: analytic regret and real tuning",
}


def runners(sizes: dict[str, Any], variants: dict[str, tuple[str, ...]] = VARIANTS,
            ) -> dict[str, tuple[Callable[[Path], dict[str, Any]], Callable[[dict[str, Any]], list[str]]]]:  # fmt: skip
    return {
        "overhead": (lambda tmp: run_overhead(tmp, sizes["overhead"], sizes["overhead_repeats"], variants["overhead"]),
                     overhead_table),
        "search": (lambda tmp: search_efficiency.measure(sizes["search"]["seeds"], sizes["search"]["trials"], tmp,
                                                         methods=variants["search"]),
                   lambda r: [*search_efficiency.table(r), "", search_efficiency.LEGEND]),
        "scale": (lambda tmp: scale.measure(tmp, **sizes["scale"], drivers=variants["scale"]), scale.table),
        "throughput": (lambda tmp: throughput.measure(tmp, **sizes["throughput"], variants=variants["throughput"]),
                       throughput.table),
        "cli": (lambda tmp: cli_timing.measure(tmp, variants["cli"]), cli_timing.table),
        "dashboard": (lambda tmp: dashboard.measure(tmp, **sizes["dashboard"]), dashboard.table),
        "auto": (lambda tmp: auto_search.measure(tmp, **sizes["auto"], searchers=variants["auto"]), auto_search.table),
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
        if name in FULL and report["sizes"][name] != FULL[name]:
            lines += [f"Sizes: `{json.dumps(report['sizes'][name])}` instead of `{json.dumps(FULL[name])}`.", ""]
        picked = report.get("variants", VARIANTS).get(name, VARIANTS[name])
        if tuple(picked) != VARIANTS[name]:
            lines += [f"Variants: only {', '.join(picked)} (`--variants`; all: {', '.join(VARIANTS[name])}).", ""]
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
    parser.add_argument("--variants", default="", metavar="NAME,...",
                        help="only these variants (search: methods), e.g. raytuner-inline,ray-tuned")  # fmt: skip
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
    try:
        variants = pick_variants({v.strip() for v in args.variants.split(",") if v.strip()}, chosen)
    except ValueError as exc:
        parser.error(f"--variants: {exc}")
    table_of = runners(sizes, variants)
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "command": " ".join([".venv/bin/python", "benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])]),
        "quick": sorted(quick & set(chosen) & set(FULL)),  # cli has no sizes: --quick leaves it as it is
        "sizes": sizes,
        "variants": {name: variants[name] for name in chosen},
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
