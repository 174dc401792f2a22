"""Export at scale: 10,000 trials x 100 reports each, in seconds and bounded memory.

Builds a raytuner experiment folder the way a run that crashed leaves it (reports in
numbered parts under ``results.parts/``, no compacted ``results.parquet``), then times
``raytuner export`` of the reports to Parquet, CSV and JSON lines, each in a fresh process,
with the process's CPU time and peak resident memory (CPU time, and its ratio to the Parquet
export, is what to compare on a machine shared with other work). DuckDB's own ``COPY ... TO``
of the same parts is timed as a peer when DuckDB is installed (it uses every core). For
scale, the peak memory of simply loading the whole reports table
(``pyarrow.parquet.read_table``) is measured too: a streaming export should stay well under
it. A plain Ray Tune folder (``result.json`` per trial) is timed at a smaller size. Results:
``benchmarks/results/export_scale.json`` and ``.md``.

    .venv/bin/python benchmarks/export_scale.py                      # 10,000 x 100
    .venv/bin/python benchmarks/export_scale.py --trials 1000 --ray-trials 200
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent


def build_raytuner_folder(folder: Path, trials: int, reports: int, trials_per_part: int = 100) -> int:
    from raytuner.results.schema import RESULT_COLUMNS, TRIAL_COLUMNS, fixed_schema

    meta = {b"raytuner.schema_version": b"1", b"raytuner.metric": b"loss", b"raytuner.mode": b"min"}
    parts = folder / "results.parts"
    parts.mkdir(parents=True)
    rng = np.random.default_rng(0)
    ids = np.array([f"{i:05x}_{i:05d}" for i in range(trials)], dtype=object)
    lr = 10 ** rng.uniform(-4, -1, trials)
    layers = rng.integers(1, 6, trials)
    schema = pa.schema(
        list(fixed_schema(RESULT_COLUMNS))
        + [pa.field(n, pa.float64()) for n in ("loss", "val_loss", "accuracy", "lr_now")],
        metadata=meta,
    )
    start = datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000
    rows = 0
    for p, first in enumerate(range(0, trials, trials_per_part)):
        n = min(trials_per_part, trials - first)
        tid = np.repeat(ids[first : first + n], reports)
        it = np.tile(np.arange(1, reports + 1), n)
        base = np.repeat(lr[first : first + n], reports)
        loss = 1.0 / it + base + rng.normal(0, 0.01, n * reports)
        table = pa.Table.from_arrays(
            [
                pa.array(tid, pa.string()),
                pa.array(it, pa.int64()),
                pa.array(it * 0.5),
                pa.array((start + it * 500).astype("int64"), pa.timestamp("ms", tz="UTC")),
                pa.array(loss),
                pa.array(loss * 1.1),
                pa.array(1 - loss / 2),
                pa.array(base),
            ],
            schema=schema,
        )
        pq.write_table(table, parts / f"part-{p:06d}.parquet")
        rows += table.num_rows
    trial_schema = pa.schema(
        list(fixed_schema(TRIAL_COLUMNS))
        + [pa.field("config/lr", pa.float64()), pa.field("config/layers", pa.int64())],
        metadata=meta,
    )
    columns = {f.name: pa.nulls(trials, f.type) for f in trial_schema}
    columns.update(
        trial_id=pa.array(ids, pa.string()),
        status=pa.array(["completed"] * trials),
        iterations=pa.array([reports] * trials, pa.int64()),
        metric=pa.array(["loss"] * trials),
        metric_best=pa.array(1.0 / reports + lr),
        config_json=pa.array([json.dumps({"lr": a, "layers": int(b)}) for a, b in zip(lr, layers, strict=True)]),
        **{"config/lr": pa.array(lr), "config/layers": pa.array(layers, pa.int64())},
    )
    pq.write_table(pa.table(columns, schema=trial_schema), folder / "trials.parquet")
    (folder / "status.json").write_text(json.dumps({"state": "running", "metric": "loss", "mode": "min"}))
    return rows


def build_ray_folder(folder: Path, trials: int, reports: int) -> int:
    folder.mkdir(parents=True)
    for i in range(trials):
        trial = folder / f"train_abcde_{i:05d}_{i}_lr=0.01_2026-01-01_00-00-00"
        trial.mkdir()
        config = {"lr": 0.001 * (i % 10 + 1), "layers": i % 5 + 1}
        (trial / "params.json").write_text(json.dumps(config))
        lines = [
            json.dumps(
                {
                    "loss": 1.0 / t + config["lr"],
                    "acc": 1 - 1.0 / t,
                    "training_iteration": t,
                    "time_total_s": t * 0.5,
                    "timestamp": 1767225600 + t,
                    "trial_id": f"abcde_{i:05d}",
                    "done": t == reports,
                    "config": config,
                    "pid": 1,
                    "hostname": "h",
                    "node_ip": "127.0.0.1",
                }
            )
            for t in range(1, reports + 1)
        ]
        (trial / "result.json").write_text("\n".join(lines) + "\n")
    return trials * reports


def child(source: str, fmt: str, target: str, table: str) -> None:
    from raytuner.results.export import ExportFormat, export_table
    from raytuner.results.query import TableName
    from raytuner.results.reader import open_experiment

    started, cpu_started = time.perf_counter(), time.process_time()
    if fmt == "load":  # the reference: the whole reports table in memory at once
        rows = pq.read_table(Path(source, "results.parts")).num_rows
    elif fmt.startswith("duckdb-"):  # a peer: DuckDB's own COPY of the same parts (all its threads)
        import duckdb

        options = "(header)" if fmt == "duckdb-csv" else "(format json)"
        parts = Path(source, "results.parts", "*.parquet")
        duckdb.sql(f"copy (select * from read_parquet('{parts}')) to '{target}' {options}")
        rows = duckdb.sql(f"select count(*) from read_parquet('{parts}')").fetchall()[0][0]
    else:
        with open_experiment(source) as tables:
            rows = export_table(tables, TableName(table), ExportFormat(fmt), target).rows
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started  # every thread of the process; steadier on a busy machine
    peak_mb = _peak_rss_mb()
    print(
        json.dumps(
            {"rows": rows, "seconds": round(seconds, 2), "cpu_s": round(cpu_seconds, 2), "peak_rss_mb": round(peak_mb, 1)}
        )
    )


def _peak_rss_mb() -> float:
    """This process's peak resident memory. Linux's VmHWM starts afresh at exec; ru_maxrss
    can keep the parent's peak from before the fork, which hid small exports behind it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(source: Path, fmt: str, out: Path, table: str = "results") -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(source), fmt, str(out), table],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    result["output_mb"] = round(out.stat().st_size / 2**20, 1) if out.exists() else 0.0
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--reports", type=int, default=100)
    parser.add_argument("--ray-trials", type=int, default=1_000)
    parser.add_argument("--child", nargs=4, metavar=("SOURCE", "FORMAT", "TARGET", "TABLE"))
    parser.add_argument("--output", type=Path, default=HERE / "results" / "export_scale.json")
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    rows_out = []
    with tempfile.TemporaryDirectory(prefix="raytuner-bench-") as scratch:
        root = Path(scratch)
        t0 = time.perf_counter()
        rows = build_raytuner_folder(root / "big", args.trials, args.reports)
        print(f"built {args.trials} trials x {args.reports} reports = {rows} rows in {time.perf_counter() - t0:.1f}s")
        cases = [
            ("raytuner", "load", "-"),
            ("raytuner", "parquet", "out.parquet"),
            ("raytuner", "csv", "out.csv"),
            ("raytuner", "jsonl", "out.jsonl"),
        ]
        if _has("duckdb"):
            cases += [("duckdb", "duckdb-csv", "peer.csv"), ("duckdb", "duckdb-jsonl", "peer.jsonl")]
        build_ray_folder(root / "ray", args.ray_trials, args.reports)
        cases += [("ray-tune", "parquet", "ray.parquet")]
        for kind, fmt, name in cases:
            source = root / ("ray" if kind == "ray-tune" else "big")
            result = measure(source, fmt, root / name)
            result.update(source=kind, format=fmt, trials=args.ray_trials if kind == "ray-tune" else args.trials)
            rows_out.append(result)
            print(json.dumps(result))
            (root / name).unlink(missing_ok=True)
    record = {
        "python": sys.version.split()[0],
        "pyarrow": pa.__version__,
        "cpus": os.cpu_count(),
        "reports_per_trial": args.reports,
        "results": rows_out,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2) + "\n")
    table = markdown(rows_out)
    args.output.with_suffix(".md").write_text(table)
    print(table, end="")
    print(f"wrote {args.output} and {args.output.with_suffix('.md')}")


def markdown(results: list[dict[str, Any]]) -> str:
    """One line per case; times as ratios to raytuner's Parquet export in the same run."""
    parquet = next(r for r in results if r["source"] == "raytuner" and r["format"] == "parquet")
    loaded = next(r["peak_rss_mb"] for r in results if r["format"] == "load")
    lines = [
        "| source | format | rows | wall s | CPU s | CPU / Parquet export | peak RSS MB | RSS / whole table loaded "
        "| output MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['source']} | {r['format']} | {r['rows']:,} | {r['seconds']} | {r['cpu_s']} "
            f"| {r['cpu_s'] / parquet['cpu_s']:.2f} | {r['peak_rss_mb']} | {r['peak_rss_mb'] / loaded:.2f} "
            f"| {r['output_mb']} |"
        )
    return "\n".join(lines) + "\n"


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    main()
