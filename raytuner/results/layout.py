"""The on-disk contract of an experiment folder (``<storage>/<name>/``): what the writer
(:mod:`raytuner.results.store`) writes and every reader reads.

- the file names;
- the open-part rule: reports arrive in ``results.open/part-NNNNNN.jsonl`` and become
  ``results.parts/part-NNNNNN.parquet``; an open part whose Parquet twin exists is a leftover
  of a kill between the two and is ignored (:func:`unsealed`);
- schema unification (docs/results.md): a metric that is a string column in any file is a
  string column everywhere, otherwise float64 (:func:`unified_kind`, :func:`unified_results_schema`);
- :func:`conform`: a batch or table cast to the unified schema.

Ray Tune's own files (experiment state, trial folders, checkpoints) stay as Ray writes
them, so ``Tuner.restore`` and TensorBoard keep working; raytuner adds these next to them.
"""

from __future__ import annotations

import errno
import json
import os
import posixpath
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raytuner.errors import Location, SpecError, UsageError
from raytuner.results.schema import RESULT_COLUMNS, ColumnType, coerce, fixed_schema, metric_type

if TYPE_CHECKING:
    import pyarrow as pa

SPEC = "spec.yaml"
ENVIRONMENT = "environment.json"
GIT_DIFF = "git.diff"  # a dirty working tree's changes when the run started (environment.json has its hash)
STATUS = "status.json"
TRIALS = "trials.parquet"
RESULTS = "results.parquet"
RESULTS_PARTS = "results.parts"
RESULTS_OPEN = "results.open"  # reports not yet in a part, one JSON line each
PBT_DECISIONS = "pbt_decisions.parquet"
SEARCH_DECISIONS = "search_decisions.parquet"  # search.algorithm auto: the searcher it started with, each switch
EXPERIMENT = "experiment.parquet"
REFIT = "refit.parquet"  # the final model of `raytuner refit`: a table of its own, never ranked with the trials
REFIT_DIR = "refit"  # that model's files and metrics.json
REMOTE_MARKER = ".raytuner-remote"  # a working copy of a folder on object storage: names its URI
PART_PREFIX = "part-"
OPEN_SUFFIX = ".jsonl"
PART_SUFFIX = ".parquet"

_SUFFIXED = re.compile(r"^(?P<stem>.*)-(?P<n>\d+)$")


def storage_root(storage: str) -> Path:
    return Path(storage).expanduser().resolve()


def check_writable(root: Path, location: Location | None = None) -> None:
    """Make sure experiment folders can be written under ``root`` (created if missing).

    A probe file is written and removed, so a read-only folder, a full disk or a path
    through a regular file is refused before Ray starts, not halfway through a run.

    Raises:
        SpecError: naming the folder, what is wrong and what to do.
    """
    probe = root / f".raytuner-write-probe-{os.getpid()}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        try:
            probe.write_bytes(b"raytuner")
        finally:
            probe.unlink(missing_ok=True)
    except OSError as exc:
        raise SpecError(
            f"cannot write experiment folders under {root}: {unwritable(root, exc)}; make it a writable folder "
            "or choose another one with --storage (or the spec's storage key)",
            location,
        ) from exc


def unwritable(root: Path, exc: OSError) -> str:
    """Why ``root`` (or a file in it) could not be written, in a few words."""
    for path in (root, *root.parents):
        if path.exists() and not path.is_dir():
            return f"{path} is a file, not a folder"
    known = {
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "the file system is read-only",
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "the disk quota is exceeded",
    }
    return known.get(exc.errno or 0) or exc.strerror or str(exc)


def new_experiment_dir(root: Path, name: str) -> Path:
    """A fresh folder for ``name`` under ``root``: ``name``, else ``name-2``, ``name-3``..."""
    candidate = root / name
    n = 1
    while candidate.exists():
        n += 1
        candidate = root / f"{name}-{n}"
    inside(root, candidate)
    return candidate


def make_experiment_dir(root: Path, name: str) -> Path:
    """Create :func:`new_experiment_dir`'s folder; two runs of one name started together each
    get a folder of their own (the one that loses the race for a name takes the next)."""
    while True:
        folder = new_experiment_dir(root, name)
        try:
            folder.mkdir(parents=True)
        except FileExistsError:
            continue
        return folder


def inside(root: Path, path: Path) -> Path:
    """``path`` resolved, refusing anything outside ``root`` (names cannot escape storage)."""
    resolved = path.resolve()
    if resolved != root.resolve() and root.resolve() not in resolved.parents:
        raise UsageError(f"'{path}' is outside the storage root {root}")
    return resolved


def is_experiment(folder: Path) -> bool:
    return (folder / STATUS).is_file() or (folder / SPEC).is_file()


# ---------------------------------------------------------------- the open-part rule


def part_name(number: int, suffix: str = PART_SUFFIX) -> str:
    """The file name of part ``number``: ``part-000007.parquet`` (or its open twin's ``.jsonl``)."""
    return f"{PART_PREFIX}{number:06d}{suffix}"


def is_part(name: str, suffix: str = PART_SUFFIX) -> bool:
    return name.startswith(PART_PREFIX) and name.endswith(suffix)


def unsealed(open_names: Iterable[str], part_names: Iterable[str]) -> list[str]:
    """The open parts (``part-NNNNNN.jsonl``) among ``open_names`` whose Parquet twin is not
    among ``part_names``, sorted: their reports are in no Parquet part (a run still filling
    one, or killed before it became Parquet). One whose twin exists is ignored."""
    sealed = {posixpath.splitext(posixpath.basename(name))[0] for name in part_names if is_part(posixpath.basename(name))}
    return sorted(
        name for name in open_names if is_part(name, OPEN_SUFFIX) and posixpath.splitext(name)[0] not in sealed
    )


def open_part_table(text: str) -> pa.Table:
    """The reports in an open part's text as a results table (metric columns typed from their
    values); a last line cut short by a kill is skipped."""
    rows: list[dict[str, Any]] = []
    types: dict[str, ColumnType] = {}
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:  # empty, or cut short by a kill
            continue
        if not isinstance(row, dict) or "trial_id" not in row:
            continue
        row["timestamp"] = timestamp(row.get("timestamp"))
        for key, value in row.items():
            if key not in RESULT_COLUMNS:
                types[key] = metric_type([value], types.get(key)) or ColumnType.FLOAT
        rows.append(row)
    return reports_table(rows, types)


def timestamp(seconds: float | None) -> datetime | None:
    """Unix seconds as the tables' timestamps hold them."""
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)


def seconds(value: Any) -> float | None:
    """A timestamp cell (or a number of seconds) as Unix seconds; None for anything else."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


# ---------------------------------------------------------------- schema unification


def results_schema(metric_types: Mapping[str, ColumnType], metadata: Mapping[bytes, bytes] | None = None) -> pa.Schema:
    """The results table's schema: fixed columns first, then one typed column per metric."""
    import pyarrow as pa

    base = fixed_schema(RESULT_COLUMNS)
    extra = [pa.field(name, kind.arrow()) for name, kind in metric_types.items() if name not in RESULT_COLUMNS]
    return pa.schema(list(base) + extra, metadata=metadata)


def reports_table(
    rows: list[dict[str, Any]], metric_types: Mapping[str, ColumnType], metadata: Mapping[bytes, bytes] | None = None
) -> pa.Table:
    """Reports as a results table (:func:`results_schema`), each value as its column holds it."""
    import pyarrow as pa

    schema = results_schema(metric_types, metadata)

    def cell(value: Any, name: str) -> Any:
        kind = metric_types.get(name)
        return value if kind is None or name in RESULT_COLUMNS else coerce(value, kind)

    columns = {field.name: [cell(row.get(field.name), field.name) for row in rows] for field in schema}
    return pa.Table.from_pydict(columns, schema=schema)


def unified_kind(seen: ColumnType | None, kind: ColumnType) -> ColumnType:
    """The schema rule for one metric column seen twice: a string anywhere makes it a string."""
    return kind if seen is None or seen is kind else ColumnType.STRING


def unified_types(schemas: Iterable[pa.Schema]) -> dict[str, ColumnType]:
    """Each metric column of several results files, typed by the rule (:func:`unified_kind`)."""
    import pyarrow as pa

    types: dict[str, ColumnType] = {}
    for schema in schemas:
        for field in schema:
            if field.name not in RESULT_COLUMNS:
                text = pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
                types[field.name] = unified_kind(types.get(field.name), ColumnType.STRING if text else ColumnType.FLOAT)
    return types


def unified_results_schema(
    schemas: list[pa.Schema], metric_types: Mapping[str, ColumnType] | None = None
) -> pa.Schema:
    """One schema for several results files (:func:`unified_types`), their metadata merged;
    ``metric_types`` (the writer's own) type the columns no file makes a string."""
    metadata: dict[bytes, bytes] = {}
    for schema in schemas:
        metadata.update(schema.metadata or {})
    types = unified_types(schemas)
    for name, kind in (metric_types or {}).items():
        types[name] = ColumnType.STRING if types.get(name) is ColumnType.STRING else kind
    return results_schema(types, metadata)


def conform(data: Any, schema: pa.Schema) -> Any:
    """``data`` (a ``RecordBatch`` or a ``Table``) with exactly ``schema``'s columns: cast where
    types differ, nulls where absent."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    for field in schema:
        index = data.schema.get_field_index(field.name)
        if index < 0:
            columns.append(pa.nulls(data.num_rows, type=field.type))
            continue
        column = data.column(index)
        if column.type != field.type:
            column = pc.cast(column, field.type)
        columns.append(column)
    return type(data).from_arrays(columns, schema=schema)
