"""Opening any experiment folder for reading: raytuner's own, or a plain Ray Tune one.

A folder is addressed by name (under the storage root), by local path, or by URI
(``s3://bucket/prefix/exp``, ``gs://...``, anything pyarrow or fsspec can open). Nothing in
the folder is modified: the results of a run that crashed (numbered parts in
``results.parts/`` next to, or instead of, ``results.parquet``) are unified while reading,
and a plain Ray Tune folder is converted into the same two tables in a temporary folder.

Reports are streamed in batches, so a million reports need no more memory than one batch.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raytuner.errors import ExperimentError, UsageError
from raytuner.results import layout
from raytuner.results.pareto import with_pareto
from raytuner.results.schema import RESULT_COLUMNS, fixed_schema

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs

BATCH_ROWS = 65_536


@dataclass(frozen=True)
class Location:
    """A folder on some filesystem (local, S3, GCS...)."""

    fs: pafs.FileSystem
    path: str
    display: str

    @property
    def name(self) -> str:
        return posixpath.basename(self.path.rstrip("/")) or self.display

    def join(self, *parts: str) -> str:
        return posixpath.join(self.path, *parts)

    def child(self, name: str) -> Location:
        from raytuner.results.remote import child_uri, is_uri

        display = child_uri(self.display, name) if is_uri(self.display) else posixpath.join(self.display, name)
        return Location(self.fs, self.join(name), display)

    def kind_of(self, name: str) -> str:
        """'file', 'dir' or 'missing' for ``name`` inside this folder."""
        import pyarrow.fs as pafs

        info = self.fs.get_file_info(self.join(name))
        return {pafs.FileType.File: "file", pafs.FileType.Directory: "dir"}.get(info.type, "missing")

    def entries(self, name: str = "") -> list[tuple[str, bool]]:
        """(name, is_dir) of everything directly inside this folder (or its subfolder ``name``)."""
        import pyarrow.fs as pafs

        selector = pafs.FileSelector(self.join(name) if name else self.path, allow_not_found=True)
        return sorted(
            (posixpath.basename(info.path), info.type == pafs.FileType.Directory)
            for info in self.fs.get_file_info(selector)
        )

    def read_bytes(self, name: str) -> bytes:
        with self.fs.open_input_stream(self.join(name)) as stream:
            return bytes(stream.read())

    def read_json(self, name: str) -> Any:
        return json.loads(self.read_bytes(name))

    @property
    def local_path(self) -> Path | None:
        """The folder on this machine's disk; None on object storage."""
        import pyarrow.fs as pafs

        return Path(self.path) if isinstance(self.fs, pafs.LocalFileSystem) else None


def location_of(ref: str, storage: str = "runs") -> Location:
    """A folder by URI, local path, or name under the storage root ``storage`` (a folder or a URI).

    Raises:
        UsageError: nothing by that name, path or URI is a folder, or its storage cannot be reached.
    """
    import pyarrow.fs as pafs

    from raytuner.results.remote import Remote, child_uri

    if "://" not in ref and "://" in storage and "/" not in ref and ref not in ("", ".", ".."):
        ref = child_uri(storage, ref)
    if "://" in ref:
        folder = Remote.parse(ref)  # shown without the credentials it may carry
        ref = folder.uri
        location = Location(folder.fs, folder.path, ref)
        fs = folder.fs
        try:
            found = fs.get_file_info(location.path).type
        except OSError as exc:
            raise UsageError(f"cannot read {ref}: {first_line(exc)}") from exc
        if found != pafs.FileType.Directory:
            raise UsageError(f"no experiment folder at {ref}")
        return location
    local = pafs.LocalFileSystem()
    direct = Path(ref).expanduser()
    if direct.is_dir():
        return Location(local, str(direct.resolve()), str(direct))
    if "/" not in ref and ref not in ("", ".", ".."):
        by_name = layout.storage_root(storage) / ref
        if by_name.is_dir():  # a plain Ray Tune folder has no raytuner marker files
            return Location(local, str(by_name), ref)
        return Location(local, str(layout.find_experiment(ref, storage)), ref)
    raise UsageError(f"no experiment folder '{ref}'")


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (pyarrow's S3 errors run to several)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def filesystem_for(uri: str, *, writing: bool = False) -> tuple[pafs.FileSystem, str]:
    """The filesystem and path of ``uri``: pyarrow's own (s3, gs, hdfs...), else fsspec's.

    The one place a URI becomes a filesystem, for reading and for ``export -o``.

    Raises:
        UsageError: no filesystem knows the scheme, the storage cannot be reached (pyarrow
            resolves an S3 bucket's region when opening it), or ``writing`` to fsspec's
            ``memory://``, which would vanish when the command exits.
    """
    import pyarrow as pa
    import pyarrow.fs as pafs

    scheme = uri.partition("://")[0]
    try:
        return pafs.FileSystem.from_uri(uri)  # type: ignore[no-any-return]
    except OSError as exc:
        raise UsageError(f"cannot reach {uri}: {first_line(exc)}") from exc
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as native_error:
        unknown = UsageError(
            f"cannot open {uri}: no filesystem for {scheme}:// (expected a local path, or a URI pyarrow or "
            f"fsspec can open such as s3://, gs://, hdfs://; pyarrow said: {first_line(native_error)})"
        )
        try:
            import fsspec
        except ImportError:
            raise unknown from native_error
        try:
            fs, path = fsspec.core.url_to_fs(uri)
        except (ImportError, ValueError, OSError) as exc:
            raise unknown from exc
    if writing and "memory" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
        raise UsageError(f"cannot write {uri}: memory:// lives in this process and would be gone when it exits")
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path


class FolderKind(str, Enum):
    RAYTUNER = "raytuner"
    RAY_TUNE = "ray-tune"


def folder_kind(location: Location) -> FolderKind | None:
    """What wrote this folder: raytuner, plain Ray Tune, or neither (None)."""
    names = dict(location.entries())
    if layout.STATUS in names or layout.TRIALS in names or layout.SPEC in names:
        return FolderKind.RAYTUNER
    if any(n.startswith("experiment_state-") and n.endswith(".json") for n in names):
        return FolderKind.RAY_TUNE
    for name, is_dir in names.items():
        if is_dir and location.child(name).kind_of("params.json") == "file":
            return FolderKind.RAY_TUNE
    return None


def experiment_at(ref: str, storage: str = "runs") -> tuple[Location, FolderKind | None]:
    """The folder ``ref`` names (see :func:`location_of`) and what wrote it.

    Raises:
        UsageError: no such folder, or its storage cannot be read.
    """
    location = location_of(ref, storage)
    try:
        return location, folder_kind(location)
    except OSError as exc:
        raise UsageError(f"cannot read {location.display}: {first_line(exc)}") from exc


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
    # plain Ray Tune folders: min was assumed (Ray records no mode outside its pickles), and
    # the local scratch folder holding the converted tables while the ``with`` block lasts
    mode_assumed: bool = False
    scratch: Path | None = None

    def iter_results(self, columns: list[str] | None = None, batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        """Every report, in file order, as batches in :attr:`results_schema` (or its ``columns``)."""
        import pyarrow.parquet as pq

        wanted = self.results_schema if columns is None else _select(self.results_schema, columns)
        for fs, path in self._result_files:
            with fs.open_input_file(path) as handle:
                reader = pq.ParquetFile(handle)
                present = [name for name in wanted.names if name in reader.schema_arrow.names]
                for batch in reader.iter_batches(batch_size=batch_rows, columns=present):
                    yield conform(batch, wanted)
        for table in self._open_reports:
            present = [name for name in wanted.names if name in table.column_names]
            for batch in table.select(present).to_batches(max_chunksize=batch_rows):
                yield conform(batch, wanted)

    def metadata(self) -> dict[bytes, bytes]:
        meta = dict(self.results_schema.metadata or {})
        meta[b"raytuner.source"] = self.source.encode()
        meta[b"raytuner.source_kind"] = self.kind.value.encode()
        return meta


def _select(schema: pa.Schema, columns: list[str]) -> pa.Schema:
    import pyarrow as pa

    return pa.schema([schema.field(name) for name in columns], metadata=schema.metadata)


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` with exactly ``schema``'s columns: cast where types differ, nulls where absent."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arrays = []
    for field in schema:
        index = batch.schema.get_field_index(field.name)
        if index < 0:
            arrays.append(pa.nulls(batch.num_rows, type=field.type))
            continue
        column = batch.column(index)
        if column.type != field.type:
            column = pc.cast(column, field.type)
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def unified_results_schema(schemas: list[pa.Schema]) -> pa.Schema:
    """One schema for several result files, by the documented rule: a metric that is a
    string column in any file is a string column; otherwise float64."""
    import pyarrow as pa

    types: dict[str, pa.DataType] = {}
    metadata: dict[bytes, bytes] = {}
    for schema in schemas:
        metadata.update(schema.metadata or {})
        for field in schema:
            if field.name in RESULT_COLUMNS:
                continue
            text = pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
            kind = pa.string() if text else pa.float64()
            if types.get(field.name, kind) != kind:
                kind = pa.string()
            types[field.name] = kind
    fields = list(fixed_schema(RESULT_COLUMNS)) + [pa.field(name, kind) for name, kind in types.items()]
    return pa.schema(fields, metadata=metadata)


def read_raytuner_folder(location: Location) -> ExperimentTables:
    """The tables of a folder raytuner wrote, finished or not.

    Raises:
        ExperimentError: the trials table is missing or unreadable.
    """
    import pyarrow.parquet as pq

    if location.kind_of(layout.TRIALS) != "file":
        raise ExperimentError(f"{location.display}: no {layout.TRIALS} (did the experiment start any trial?)")
    try:
        with location.fs.open_input_file(location.join(layout.TRIALS)) as handle:
            trials = with_pareto(pq.read_table(handle))  # the front as of now (a running experiment's too)
        unsealed = _open_parts(location)  # read before the parts: one sealed meanwhile is in them then
        files = [layout.RESULTS] if location.kind_of(layout.RESULTS) == "file" else []
        files += [
            posixpath.join(layout.RESULTS_PARTS, name)
            for name, is_dir in location.entries(layout.RESULTS_PARTS)
            if not is_dir and name.startswith("part-") and name.endswith(".parquet")
        ]
        schemas = []
        for name in files:
            with location.fs.open_input_file(location.join(name)) as handle:
                schemas.append(pq.read_schema(handle))
        open_reports = _open_reports(unsealed, files)
    except OSError as exc:
        raise ExperimentError(f"{location.display}: cannot read the results: {exc}") from exc
    meta = trials.schema.metadata or {}
    metric = meta.get(b"raytuner.metric")
    mode = meta.get(b"raytuner.mode")
    schema = unified_results_schema(schemas + [table.schema for table in open_reports])
    schema = schema.with_metadata({**meta, **(schema.metadata or {})})
    return ExperimentTables(
        name=location.name,
        source=location.display,
        kind=FolderKind.RAYTUNER,
        metric=metric.decode() if metric else None,
        mode=mode.decode() if mode else None,
        trials=trials,
        results_schema=schema,
        _result_files=[(location.fs, location.join(name)) for name in files],
        _open_reports=open_reports,
    )


def _open_parts(location: Location) -> dict[str, str]:
    """The open parts' texts by part name (``part-000007``): reports not yet in a Parquet part."""
    texts = {}
    for name, is_dir in location.entries(layout.RESULTS_OPEN):
        stem, suffix = posixpath.splitext(name)
        if is_dir or suffix != ".jsonl" or not stem.startswith("part-"):
            continue
        try:
            with location.fs.open_input_stream(location.join(posixpath.join(layout.RESULTS_OPEN, name))) as handle:
                texts[stem] = handle.read().decode("utf-8", errors="replace")
        except FileNotFoundError:  # sealed since the listing: its Parquet part holds the reports
            continue
    return texts


def _open_reports(texts: dict[str, str], files: list[str]) -> list[pa.Table]:
    """The open parts whose Parquet twin is not among ``files``, as results tables."""
    from raytuner.results.store import open_part_table

    sealed = {posixpath.splitext(posixpath.basename(name))[0] for name in files}
    tables = [open_part_table(text) for stem, text in sorted(texts.items()) if stem not in sealed]
    return [table for table in tables if table.num_rows]


@contextmanager
def open_experiment(
    ref: str, storage: str = "runs", metric: str | None = None, mode: str | None = None
) -> Iterator[ExperimentTables]:
    """The tables of the experiment at ``ref`` (name, path or URI), for the ``with`` block.

    ``metric`` and ``mode`` matter only for a plain Ray Tune folder (raytuner records its own);
    without them, the metric Ray was given (``TuneConfig(metric=...)``) and ``min`` are used.

    Raises:
        UsageError: ``ref`` is not an experiment folder.
        ExperimentError: its files cannot be read.
    """
    if mode not in (None, "min", "max"):
        raise UsageError(f"--mode: expected 'min' or 'max', found {mode!r}")
    location, kind = experiment_at(ref, storage)
    if kind is FolderKind.RAYTUNER:
        yield read_raytuner_folder(location)
        return
    if kind is None:
        raise UsageError(f"{location.display} is neither a raytuner nor a Ray Tune experiment folder")
    from raytuner.results.ray_folder import convert_ray_folder

    with tempfile.TemporaryDirectory(prefix="raytuner-") as scratch:
        # named like the experiment, which the report's title shows
        folder = Path(scratch) / (location.name.replace("/", "_").strip(".") or "experiment")
        folder.mkdir()
        yield convert_ray_folder(location, folder, metric=metric, mode=mode)
