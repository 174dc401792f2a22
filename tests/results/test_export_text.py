"""CSV and JSON-lines exports round-trip every value: nulls, NaN, awkward strings, timestamps.

The experiment folder is real Parquet on disk (a crashed run's layout: reports in numbered
parts); the exports are read back with two independent readers each.
"""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from raytuner.results.cell_text import timestamp_text
from raytuner.results.export import ExportFormat, export_table
from raytuner.results.query import TableName
from raytuner.results.reader import open_experiment
from raytuner.results.schema import RESULT_COLUMNS, TRIAL_COLUMNS, fixed_schema

NOTES = [
    "plain",
    "a,b",
    'say "hi", twice ""',
    "line one\nline two",
    "crlf\r\nend",
    "ünïcødé ✓ 日本語 🙂",
    "",
    None,
    "tab\there",
    "back\\slash",
    "\x01 control",
    "\u2028 separator",
]
LOSSES = [1.5, None, math.nan, math.inf, -math.inf, 1e-300, -0.0, 123456789.123456, 0.1, 2.0, -7.25, 1e300]
STEPS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 2**62]
FLAGS = [True, False, None, True, False, True, None, False, True, True, False, False]
TIMES = [
    datetime(2026, 1, 1, tzinfo=UTC),
    datetime(2026, 1, 1, 0, 0, 0, 500_000, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC),
    None,
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 58, 500_000, tzinfo=UTC),
    datetime(2000, 2, 29, 12, 0, tzinfo=UTC),
    datetime(2100, 3, 1, tzinfo=UTC),
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC),
    datetime(2024, 7, 4, 1, 2, 3, 4_000, tzinfo=UTC),
    datetime(2026, 6, 30, 23, 0, tzinfo=UTC),
]
ROWS = len(NOTES)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A raytuner folder as a crashed run leaves it, holding awkward values in every column type."""
    folder = tmp_path_factory.mktemp("runs") / "awkward"
    parts = folder / "results.parts"
    parts.mkdir(parents=True)
    meta = {b"raytuner.schema_version": b"1", b"raytuner.metric": b"loss", b"raytuner.mode": b"min"}
    schema = pa.schema(
        list(fixed_schema(RESULT_COLUMNS)) + [pa.field("loss", pa.float64()), pa.field("note", pa.string())],
        metadata=meta,
    )
    results = pa.table(
        {
            "trial_id": [f"t{i % 3}" for i in range(ROWS)],
            "training_iteration": STEPS,
            "time_total_s": [0.5 * i for i in range(ROWS)],
            "timestamp": pa.array(TIMES, pa.timestamp("ms", tz="UTC")),
            "loss": LOSSES,
            "note": NOTES,
        },
        schema=schema,
    )
    pq.write_table(results.slice(0, 5), parts / "part-000000.parquet")
    pq.write_table(results.slice(5), parts / "part-000001.parquet")
    trial_schema = pa.schema(
        list(fixed_schema(TRIAL_COLUMNS)) + [pa.field("config/flag", pa.bool_()), pa.field("config/name", pa.string())],
        metadata=meta,
    )
    columns = {field.name: pa.nulls(ROWS, field.type) for field in trial_schema}
    columns.update(
        {
            "trial_id": pa.array([f"t{i}" for i in range(ROWS)]),
            "status": pa.array(["completed"] * ROWS),
            "started_at": pa.array(TIMES, pa.timestamp("ms", tz="UTC")),
            "metric_best": pa.array(LOSSES),
            "iterations": pa.array(STEPS, pa.int64()),
            "error": pa.array(NOTES),
            "config/flag": pa.array(FLAGS, pa.bool_()),
            "config/name": pa.array(list(reversed(NOTES))),
        }
    )
    pq.write_table(pa.table(columns, schema=trial_schema), folder / "trials.parquet")
    (folder / "status.json").write_text(json.dumps({"state": "running", "metric": "loss", "mode": "min"}))
    return folder


def _export(folder: Path, table: TableName, fmt: ExportFormat, target: Path) -> pa.Table:
    with open_experiment(str(folder)) as tables:
        summary = export_table(tables, table, fmt, str(target))
        source = tables.trials if table is TableName.TRIALS else pa.Table.from_batches(list(tables.iter_results()))
    assert summary.rows == ROWS
    return source


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return a == b and type(a) is type(b)


@pytest.mark.parametrize("table", list(TableName))
def test_csv_export_round_trips_every_value(folder: Path, tmp_path: Path, table: TableName) -> None:
    target = tmp_path / "out.csv"
    source = _export(folder, table, ExportFormat.CSV, target)
    raw = target.read_bytes()

    # Arrow reads it back to the same types and values, nulls (empty) apart from empty strings ("").
    options = pcsv.ConvertOptions(
        column_types=source.schema, null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False
    )
    back = pcsv.read_csv(io.BytesIO(raw), convert_options=options)
    assert back.column_names == source.column_names
    for name in source.column_names:
        expected, found = source.column(name).to_pylist(), back.column(name).to_pylist()
        assert all(_same(a, b) for a, b in zip(expected, found, strict=True)), (name, expected, found)

    # Python's csv module sees the same cells: quoting keeps commas, quotes and newlines inside one.
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
    assert rows[0] == source.column_names and len(rows) == ROWS + 1
    text = "error" if table is TableName.TRIALS else "note"
    assert [row[source.column_names.index(text)] for row in rows[1:]] == [n or "" for n in NOTES]
    stamp = "started_at" if table is TableName.TRIALS else "timestamp"
    stamps = [row[source.column_names.index(stamp)] for row in rows[1:]]
    assert stamps[1] == "2026-01-01 00:00:00.500Z" and stamps[3] == ""


@pytest.mark.parametrize("table", list(TableName))
def test_jsonl_export_round_trips_every_value(folder: Path, tmp_path: Path, table: TableName) -> None:
    target = tmp_path / "out.jsonl"
    source = _export(folder, table, ExportFormat.JSONL, target)
    lines = target.read_bytes().decode("utf-8").split("\n")
    assert lines[-1] == "" and len(lines) == ROWS + 1  # newlines inside values are escaped
    rows = [json.loads(line) for line in lines[:-1]]
    for name in source.column_names:
        kind = source.schema.field(name).type
        for value, row in zip(source.column(name).to_pylist(), rows, strict=True):
            found = row[name]
            if value is None or (isinstance(value, float) and not math.isfinite(value)):
                assert found is None, (name, value, found)
            elif pa.types.is_timestamp(kind):
                assert datetime.fromisoformat(found) == value and found.endswith("+0000"), found
            elif pa.types.is_floating(kind):
                assert float(found) == value and math.copysign(1, float(found)) == math.copysign(1, value)
            else:
                assert found == value and type(found) is type(value), (name, value, found)
    # DuckDB, a second JSON reader, agrees on the awkward strings.
    duckdb = pytest.importorskip("duckdb")
    text = "error" if table is TableName.TRIALS else "note"
    found = [r[0] for r in duckdb.sql(f"select \"{text}\" from read_json('{target}', format='newline_delimited')").fetchall()]
    assert found == NOTES


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("tz", ["UTC", None])
def test_timestamp_text_matches_arrow_to_the_byte(unit: str, tz: str | None) -> None:
    per_second = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[unit]
    low, high = (-(2**62), 2**62) if unit == "ns" else (-62_135_596_800 * per_second, 253_402_300_800 * per_second - 1)
    values = [int(v) for v in np.random.default_rng(7).integers(low, high, 5_000)] + [low, high, 0, -1, 1, None]
    column = pa.array(values, pa.int64()).cast(pa.timestamp(unit, tz=tz))
    assert timestamp_text(column).equals(pc.cast(column, pa.string()))
    iso = pc.strftime(column, "%Y-%m-%dT%H:%M:%S%z" if tz else "%Y-%m-%dT%H:%M:%S")
    assert timestamp_text(column, "T", "+0000").equals(iso)
    assert timestamp_text(column.slice(100, 50)).equals(pc.cast(column.slice(100, 50), pa.string()))


def test_timestamps_arrow_formats_differently_are_left_to_arrow() -> None:
    early = pa.array([-62_135_596_800_001, 0], pa.int64()).cast(pa.timestamp("ms", tz="UTC"))  # year 0
    assert timestamp_text(early).equals(pc.cast(early, pa.string()))
    paris = pa.array([0, None], pa.int64()).cast(pa.timestamp("ms", tz="Europe/Paris"))
    assert timestamp_text(paris).to_pylist() == ["1970-01-01 01:00:00.000+0100", None]
    for zone in ("Etc/UTC", "+00:00"):  # UTC by another name: Arrow writes +0000, not Z
        other = pa.array([1_500, None], pa.int64()).cast(pa.timestamp("ms", tz=zone))
        assert timestamp_text(other).to_pylist() == ["1970-01-01 00:00:01.500+0000", None]
