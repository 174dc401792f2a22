"""Writing a selection of an experiment's tables as Parquet, CSV or JSON lines.

Batches are written as they are read: exporting a million reports holds one batch in memory.
The output goes to a local file, to stdout (CSV and JSON lines), or to a URI (``s3://...``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import IO, TYPE_CHECKING, Any

from raytuner.errors import UsageError
from raytuner.results.query import TableName, result_rows, trial_rows
from raytuner.results.reader import ExperimentTables

if TYPE_CHECKING:
    import pyarrow as pa


class ExportFormat(str, Enum):
    PARQUET = "parquet"
    CSV = "csv"
    JSONL = "jsonl"


@dataclass(frozen=True)
class ExportSummary:
    rows: int
    columns: list[str]
    target: str


def export_table(
    tables: ExperimentTables,
    table: TableName,
    fmt: ExportFormat,
    target: str | None,
    columns: str | None = None,
    where: str | None = None,
) -> ExportSummary:
    """Write ``table`` of ``tables`` (columns, filter) to ``target`` (a path, a URI, or None: stdout).

    Raises:
        UsageError: a bad column list or filter, or Parquet asked for on stdout.
    """
    if table is TableName.TRIALS:
        selected = trial_rows(tables, columns=columns, where=where)
        schema = selected.schema.with_metadata(tables.metadata())
        batches: Iterator[pa.RecordBatch] = iter(selected.cast(schema).to_batches(max_chunksize=65_536))
    else:
        selection = result_rows(tables, columns=columns, where=where)
        schema, batches = selection.schema, selection.batches
    if target is None and fmt is ExportFormat.PARQUET:
        raise UsageError("Parquet goes to a file: give --output PATH (CSV and JSON lines can go to stdout)")
    rows = 0
    with _sink(target) as out:
        writer = _WRITERS[fmt](out, schema)
        try:
            for batch in batches:
                writer.write(batch)
                rows += batch.num_rows
        finally:
            writer.close()
    return ExportSummary(rows, schema.names, target or "stdout")


@contextmanager
def _sink(target: str | None) -> Iterator[IO[bytes] | Any]:
    if target is None:
        yield sys.stdout.buffer
        sys.stdout.flush()
        return
    import pyarrow.fs as pafs

    if "://" in target:
        fs, path = pafs.FileSystem.from_uri(target)
    else:
        fs, path = pafs.LocalFileSystem(), target
    try:
        stream = fs.open_output_stream(path)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc}") from exc
    with stream:
        yield stream


class _ParquetWriter:
    def __init__(self, out: Any, schema: pa.Schema) -> None:
        import pyarrow.parquet as pq

        self.writer = pq.ParquetWriter(out, schema)

    def write(self, batch: pa.RecordBatch) -> None:
        self.writer.write_batch(batch)

    def close(self) -> None:
        self.writer.close()


class _CsvWriter:
    def __init__(self, out: Any, schema: pa.Schema) -> None:
        import pyarrow.csv as pcsv

        self.writer = pcsv.CSVWriter(out, schema)

    def write(self, batch: pa.RecordBatch) -> None:
        self.writer.write_batch(batch)

    def close(self) -> None:
        self.writer.close()


class _JsonLinesWriter:
    """One JSON object per row; timestamps as ISO 8601 text, NaN and infinities as null.

    Rows are assembled a column at a time by Arrow kernels, not value by value in Python.
    """

    def __init__(self, out: Any, schema: pa.Schema) -> None:
        self.out = out
        self.keys = [json.dumps(name) + ": " for name in schema.names]

    def write(self, batch: pa.RecordBatch) -> None:
        import pyarrow.compute as pc

        if not batch.num_rows:
            return
        parts: list[Any] = ["{"]
        for i, key in enumerate(self.keys):
            parts += [(", " if i else "") + key, _json_cells(batch.column(i))]
        parts += ["}\n", ""]  # the last argument is the separator
        lines = pc.binary_join_element_wise(*parts)
        self.out.write("".join(lines.to_pylist()).encode())

    def close(self) -> None:
        pass


_NEEDS_ESCAPE = r'["\\\x00-\x1f]'


def _json_cells(column: pa.Array) -> pa.Array:
    """Each value of ``column`` as JSON text (``null`` for nulls), as a string array."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_timestamp(kind):
        column, kind = pc.strftime(column, "%Y-%m-%dT%H:%M:%S%z"), pa.string()
    if pa.types.is_floating(kind):
        column = pc.cast(pc.if_else(pc.is_finite(column), column, pa.scalar(None, kind)), pa.string())
    elif pa.types.is_integer(kind):
        column = pc.cast(column, pa.string())
    elif pa.types.is_boolean(kind):
        column = pc.if_else(column, "true", "false")
    elif pa.types.is_string(kind) and not pc.any(pc.match_substring_regex(column, _NEEDS_ESCAPE)).as_py():
        column = pc.binary_join_element_wise('"', column, '"', "")
    else:
        column = pa.array([None if v is None else json.dumps(v, default=str) for v in column.to_pylist()], pa.string())
    return pc.fill_null(column, "null")


_WRITERS: dict[ExportFormat, Any] = {
    ExportFormat.PARQUET: _ParquetWriter,
    ExportFormat.CSV: _CsvWriter,
    ExportFormat.JSONL: _JsonLinesWriter,
}
