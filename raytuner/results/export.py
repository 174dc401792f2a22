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
from raytuner.results.cell_text import csv_ready, csv_schema, json_cells
from raytuner.results.folder import filesystem_for, first_line
from raytuner.results.query import TableName, result_rows, trial_rows
from raytuner.results.tables import ExperimentTables

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
        fs, path = filesystem_for(target, writing=True)
    else:
        fs, path = pafs.LocalFileSystem(), target
    try:
        stream = fs.open_output_stream(path)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {first_line(exc)}") from exc
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
    """Arrow's CSV writer, given timestamps already as text (Arrow's own formatting is slow)."""

    def __init__(self, out: Any, schema: pa.Schema) -> None:
        import pyarrow.csv as pcsv

        self.writer = pcsv.CSVWriter(out, csv_schema(schema))

    def write(self, batch: pa.RecordBatch) -> None:
        self.writer.write_batch(csv_ready(batch))

    def close(self) -> None:
        self.writer.close()


class _JsonLinesWriter:
    """One JSON object per row; timestamps as ISO 8601 text, NaN and infinities as null.

    Rows are assembled a column at a time by Arrow kernels, not value by value in Python,
    and the joined text goes out as Arrow's buffer, without a detour through Python strings.
    """

    def __init__(self, out: Any, schema: pa.Schema) -> None:
        self.out = out
        self.keys = [json.dumps(name, ensure_ascii=False) + ": " for name in schema.names]

    def write(self, batch: pa.RecordBatch) -> None:
        import pyarrow.compute as pc

        if not batch.num_rows:
            return
        parts: list[Any] = ["{"]
        for i, key in enumerate(self.keys):
            parts += [(", " if i else "") + key, json_cells(batch.column(i))]
        parts += ["}\n", ""]  # the last argument is the separator
        lines = pc.binary_join_element_wise(*parts)
        self.out.write(_text_bytes(lines))

    def close(self) -> None:
        pass


def _text_bytes(lines: pa.Array) -> memoryview:
    """The concatenated text of a string array without nulls, as a view of Arrow's buffer."""
    import numpy as np

    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset : lines.offset + len(lines) + 1]
    return memoryview(lines.buffers()[2])[int(offsets[0]) : int(offsets[-1])]


_WRITERS: dict[ExportFormat, Any] = {
    ExportFormat.PARQUET: _ParquetWriter,
    ExportFormat.CSV: _CsvWriter,
    ExportFormat.JSONL: _JsonLinesWriter,
}
