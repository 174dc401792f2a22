"""An experiment's two tables as every reader sees them: the trials (in memory) and the
reports (streamed from files, in one unified schema).

:func:`read_raytuner_folder` reads a folder raytuner wrote, finished, running or killed, by
the on-disk contract of :mod:`raytuner.results.layout`; a plain Ray Tune folder is converted
into the same tables by :mod:`raytuner.results.ray_folder`. Nothing in the folder is modified.
Reports are streamed in batches, so a million reports need no more memory than one batch.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from raytuner.errors import ExperimentError
from raytuner.results import layout
from raytuner.results.folder import Folder
from raytuner.results.pareto import with_pareto

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

BATCH_ROWS = 65_536
Footer = tuple[int, "pq.FileMetaData"]  # a Parquet file's size and its metadata, read together


class FolderKind(str, Enum):
    RAYTUNER = "raytuner"
    RAY_TUNE = "ray-tune"


def folder_kind(folder: Folder) -> FolderKind | None:
    """What wrote this folder: raytuner, plain Ray Tune, or neither (None)."""
    names = dict(folder.entries())
    if layout.STATUS in names or layout.TRIALS in names or layout.SPEC in names:
        return FolderKind.RAYTUNER
    if any(n.startswith("experiment_state-") and n.endswith(".json") for n in names):
        return FolderKind.RAY_TUNE
    for name, is_dir in names.items():
        if is_dir and folder.child(name).kind_of("params.json") == "file":
            return FolderKind.RAY_TUNE
    return None


@dataclass
class ExperimentTables:
    """The trials table (in memory: one row per trial) and the reports (streamed from files)."""

    name: str
    source: str
    kind: FolderKind
    metric: str | None
    mode: str | None
    trials: pa.Table
    results_schema: pa.Schema
    _result_files: list[tuple[pafs.FileSystem, str]]
    _open_reports: list[pa.Table] = dataclasses.field(default_factory=list)  # a running or killed run's open parts
    _footers: dict[str, Footer] = dataclasses.field(default_factory=dict)  # by path: read once
    # plain Ray Tune folders: min was assumed (Ray records no mode outside its pickles), and
    # the local scratch folder holding the converted tables while the ``with`` block lasts
    mode_assumed: bool = False
    scratch: Path | None = None
    folder: Folder | None = None  # the folder read (a plain Ray Tune one: not the scratch copy)

    def iter_results(
        self, columns: list[str] | None = None, batch_rows: int = BATCH_ROWS, trial_id: str | None = None
    ) -> Iterator[pa.RecordBatch]:
        """Every report (or only ``trial_id``'s), in file order, as batches in :attr:`results_schema`
        (or its ``columns``)."""
        wanted = self.results_schema if columns is None else _select(self.results_schema, columns)
        return _batches(self._result_files, self._open_reports, wanted, batch_rows, trial_id, self._footers)

    def metadata(self) -> dict[bytes, bytes]:
        meta = dict(self.results_schema.metadata or {})
        meta[b"raytuner.source"] = self.source.encode()
        meta[b"raytuner.source_kind"] = self.kind.value.encode()
        return meta


def _select(schema: pa.Schema, columns: list[str]) -> pa.Schema:
    import pyarrow as pa

    return pa.schema([schema.field(name) for name in columns], metadata=schema.metadata)


@dataclass(frozen=True)
class ResultSources:
    """Where a folder's reports are: its Parquet files (``results.parquet``, the parts) and the
    open parts not yet sealed (the open-part rule), with the schema that unifies them all."""

    files: list[tuple[pafs.FileSystem, str]]
    open_reports: list[pa.Table]
    schema: pa.Schema
    footers: dict[str, Footer] = dataclasses.field(default_factory=dict)  # each file's, by path

    def batches(
        self, columns: list[str], batch_rows: int = BATCH_ROWS, trial_id: str | None = None
    ) -> Iterator[pa.RecordBatch]:
        """Every report's ``columns`` (those the schema has), or only ``trial_id``'s, in file order."""
        wanted = _select(self.schema, [name for name in columns if name in self.schema.names])
        return _batches(self.files, self.open_reports, wanted, batch_rows, trial_id, self.footers)

    def table(self, columns: list[str]) -> pa.Table:
        """Every report's ``columns`` (those the schema has) as one table, in file order."""
        import pyarrow as pa

        wanted = _select(self.schema, [name for name in columns if name in self.schema.names])
        return pa.Table.from_batches(list(self.batches(columns)), schema=wanted)


def result_sources(folder: Folder) -> ResultSources:
    """The reports of a folder raytuner wrote, finished, running or killed.

    Raises:
        OSError: a file cannot be read; pyarrow's errors: one is not Parquet.
    """
    import pyarrow.parquet as pq

    unsealed = _open_parts(folder)  # read before the parts: one sealed meanwhile is in them then
    files = [layout.RESULTS] if folder.kind_of(layout.RESULTS) == "file" else []
    files += [
        posixpath.join(layout.RESULTS_PARTS, name)
        for name, is_dir in folder.entries(layout.RESULTS_PARTS)
        if not is_dir and layout.is_part(name)
    ]
    footers = {}
    for name in files:
        with folder.fs.open_input_file(folder.join(name)) as handle:
            footers[folder.join(name)] = (handle.size(), pq.read_metadata(handle))  # kept: read once, not twice
    schemas = [meta.schema.to_arrow_schema() for _, meta in footers.values()]
    opened = [layout.open_part_table(unsealed[name]) for name in layout.unsealed(unsealed, files)]
    open_reports = [table for table in opened if table.num_rows]
    schema = layout.unified_results_schema(schemas + [table.schema for table in open_reports])
    return ResultSources([(folder.fs, folder.join(name)) for name in files], open_reports, schema, footers)


def _batches(
    files: list[tuple[pafs.FileSystem, str]],
    open_reports: list[pa.Table],
    wanted: pa.Schema,
    batch_rows: int,
    trial_id: str | None = None,
    footers: dict[str, Footer] | None = None,
) -> Iterator[pa.RecordBatch]:
    """The reports in ``wanted``'s columns; with ``trial_id``, only the row groups whose
    statistics may hold that trial are read, and only its rows are kept."""
    import pyarrow.parquet as pq

    for fs, path in files:
        with fs.open_input_file(path) as handle:
            size, meta = (footers or {}).get(path, (None, None))
            # a footer read when the file had another size is not this file's (compaction replaces results.parquet)
            reader = pq.ParquetFile(handle, metadata=meta if size == handle.size() else None)
            present = [name for name in wanted.names if name in reader.schema_arrow.names]
            groups = None if trial_id is None else _row_groups_with(reader, trial_id)
            if groups == []:
                continue
            for batch in reader.iter_batches(batch_size=batch_rows, columns=present, row_groups=groups):
                yield from _of_trial(layout.conform(batch, wanted), trial_id)
    for table in open_reports:
        present = [name for name in wanted.names if name in table.column_names]
        for batch in table.select(present).to_batches(max_chunksize=batch_rows):
            yield from _of_trial(layout.conform(batch, wanted), trial_id)


def _row_groups_with(reader: pq.ParquetFile, trial_id: str) -> list[int]:
    """The row groups whose ``trial_id`` statistics do not rule ``trial_id`` out (a part holds
    the trials that ran while it was written; their ids are numbered in start order)."""
    meta = reader.metadata
    every = list(range(meta.num_row_groups))
    column = next((j for j in range(len(reader.schema)) if reader.schema.column(j).path == "trial_id"), None)
    if column is None:
        return every
    groups = []
    for i in every:
        stats = meta.row_group(i).column(column).statistics
        known = stats is not None and stats.has_min_max and isinstance(stats.min, str) and isinstance(stats.max, str)
        if not known or stats.min <= trial_id <= stats.max:
            groups.append(i)
    return groups


def _of_trial(batch: pa.RecordBatch, trial_id: str | None) -> Iterator[pa.RecordBatch]:
    """``batch``, or its rows of ``trial_id`` when there are any."""
    if trial_id is None:
        yield batch
        return
    import pyarrow.compute as pc

    if "trial_id" not in batch.schema.names:
        return
    kept = batch.filter(pc.equal(batch.column("trial_id"), trial_id))
    if kept.num_rows:
        yield kept


def read_raytuner_folder(folder: Folder) -> ExperimentTables:
    """The tables of a folder raytuner wrote, finished or not.

    Raises:
        ExperimentError: the trials table is missing or unreadable.
    """

    if folder.kind_of(layout.TRIALS) != "file":
        raise ExperimentError(f"{folder.display}: no {layout.TRIALS} (did the experiment start any trial?)")
    import pyarrow as pa

    try:
        trials = with_pareto(folder.read_table(layout.TRIALS))  # the front as of now (a running experiment's too)
        sources = result_sources(folder)
    except (OSError, pa.ArrowException) as exc:
        raise ExperimentError(f"{folder.display}: cannot read the results: {exc}") from exc
    meta = trials.schema.metadata or {}
    metric = meta.get(b"raytuner.metric")
    mode = meta.get(b"raytuner.mode")
    schema = sources.schema.with_metadata({**meta, **(sources.schema.metadata or {})})
    return ExperimentTables(
        name=folder.name,
        source=folder.display,
        kind=FolderKind.RAYTUNER,
        metric=metric.decode() if metric else None,
        mode=mode.decode() if mode else None,
        trials=trials,
        results_schema=schema,
        _result_files=sources.files,
        _footers=sources.footers,
        _open_reports=sources.open_reports,
        folder=folder,
    )


def _open_parts(folder: Folder) -> dict[str, str]:
    """The open parts' texts by file name (``part-000007.jsonl``); one sealed since the
    listing is left out (its Parquet part holds the reports)."""
    texts = {}
    for name, is_dir in folder.entries(layout.RESULTS_OPEN):
        if is_dir or not layout.is_part(name, layout.OPEN_SUFFIX):
            continue
        try:
            with folder.fs.open_input_stream(folder.join(layout.RESULTS_OPEN, name)) as handle:
                texts[name] = handle.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            continue
    return texts
