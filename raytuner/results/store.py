"""Writing an experiment's results to Parquet while it runs.

Every report is appended, as it arrives, to the open part ``results.open/part-NNNNNN.jsonl``
(one JSON line, written through to the operating system: a killed driver loses none of it).
Every few seconds the open part becomes ``results.parts/part-NNNNNN.parquet`` and the trials
table is replaced atomically; an open part whose Parquet twin exists is a leftover of a kill
between the two and is ignored. Readers and ``resume`` take the open parts too, so a crash
loses no report the driver received. At the end the parts are compacted into one
``results.parquet`` with the final, unified schema.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from raytuner.results import layout
from raytuner.results.pareto import OBJECTIVES_KEY, PARETO_COLUMN, encode_objectives
from raytuner.results.records import ExperimentBook, TrialRecord, is_number
from raytuner.results.schema import (
    DECISION_COLUMNS,
    SCHEMA_VERSION,
    TRIAL_COLUMNS,
    ColumnType,
    coerce,
    fixed_schema,
    flatten_config,
    metric_type,
)


def write_json_atomic(path: Path, data: Any) -> None:
    with _replacing(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with _replacing(path) as tmp:
        tmp.write_bytes(data)


def _write_table_atomic(table: Any, path: Path) -> None:
    import pyarrow.parquet as pq

    with _replacing(path) as tmp:
        pq.write_table(table, tmp)


@contextlib.contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path`` that replaces it once written whole; one that could not be
    written (a full disk) is removed, and ``path`` stays as it was."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


class ResultsStore:
    """Buffers reports and writes the experiment's Parquet tables."""

    def __init__(
        self,
        folder: Path,
        book: ExperimentBook,
        config_types: Mapping[str, ColumnType],
        flush_every_s: float = 2.0,
        max_buffered: int = 5_000,
        max_new_trials: int = 1_000,
    ) -> None:
        self.folder = folder
        self.book = book
        self.config_types = dict(config_types)
        self.flush_every_s = flush_every_s
        # Flushing sooner than every ``flush_every_s`` when this many reports are buffered or
        # this many trials were added since the last flush bounds what a flush holds at once
        # (about 6 kB a trial, 1 kB a report): a run of many short trials keeps a flat memory.
        self.max_buffered = max_buffered
        self.max_new_trials = max_new_trials
        self._held_after_flush = 0
        self.metric_types: dict[str, ColumnType] = {}
        self._rows: list[dict[str, Any]] = []
        self._decisions: list[dict[str, Any]] = []
        # trial id -> the first part that may hold its reports again: a trial lost with the driver
        # is dropped from what was written before, not from a trial run again under its id (inline)
        self._forgotten: dict[str, int] = {}
        self._forgotten_rows: set[str] = set()  # their rows, until the trials table is next written
        self._decisions_written = 0
        self._parts = 0
        self._last_flush = time.monotonic()
        self._dirty = True
        self.parts_dir = folder / layout.RESULTS_PARTS
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        self.open_dir = folder / layout.RESULTS_OPEN
        self._open_part: IO[str] | None = None  # the reports of the part being filled, as they arrive
        self._resume_existing()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_open_part"] = None  # a file handle (Ray pickles its callbacks with the run config)
        return state

    def _resume_existing(self) -> None:
        """Continue after what an earlier run of this experiment wrote (``raytuner resume``)."""
        import pyarrow.parquet as pq

        seal_open_parts(self.folder, _metadata(self.book))
        existing = sorted(self.parts_dir.glob("part-*.parquet"))
        if existing:
            self._parts = _part_number(existing[-1]) + 1
        sources = [*existing, *([self.folder / layout.RESULTS] if (self.folder / layout.RESULTS).exists() else [])]
        self.metric_types = layout.unified_types(pq.read_schema(path) for path in sources)
        decisions = self.folder / layout.PBT_DECISIONS
        if decisions.exists():
            self._decisions = pq.read_table(decisions).to_pylist()
            self._decisions_written = len(self._decisions)

    # ------------------------------------------------------------------ intake

    def add_result(self, trial_id: str, result: Mapping[str, Any], metrics: Mapping[str, Any]) -> None:
        for key, value in metrics.items():
            self.metric_types[key] = metric_type([value], self.metric_types.get(key)) or ColumnType.FLOAT
        row = {
            "trial_id": trial_id,
            "training_iteration": int(result.get("training_iteration", 0) or 0),
            "time_total_s": float(result.get("time_total_s", 0.0) or 0.0),
            "timestamp": layout.timestamp(float(result.get("timestamp") or time.time())),
        }
        row.update(metrics)
        self._append_open(row)
        self._rows.append(row)
        self._dirty = True
        if len(self._rows) >= self.max_buffered:
            self.flush()

    def _open_path(self) -> Path:
        """The open part of the part being filled (its Parquet twin gets the same number)."""
        return self.open_dir / layout.part_name(self._parts, layout.OPEN_SUFFIX)

    def _append_open(self, row: Mapping[str, Any]) -> None:
        """One line in the open part, handed to the operating system at once: a driver killed
        now (kill -9, the out-of-memory killer) loses nothing it was told."""
        if self._open_part is None:
            self.open_dir.mkdir(exist_ok=True)
            self._open_part = self._open_path().open("a", encoding="utf-8")
        line = dict(row)
        line["timestamp"] = line["timestamp"].timestamp()
        self._open_part.write(json.dumps(line, default=str) + "\n")
        self._open_part.flush()

    def add_decision(self, decision: Any) -> None:
        """Record one PBT exploit/explore decision (a :class:`raytuner.results.lineage.Decision`)."""
        changed = {
            key: decision.new_config.get(key)
            for key in sorted(set(decision.new_config) | set(decision.source_config))
            if decision.new_config.get(key) != decision.source_config.get(key)
        }
        self._decisions.append(
            {
                "time": layout.timestamp(decision.time),
                "trial_id": decision.trial_id,
                "source_trial_id": decision.source_trial_id,
                "step": decision.step,
                "source_step": decision.source_step,
                "old_config_json": json.dumps(decision.old_config, sort_keys=True, default=str),
                "source_config_json": json.dumps(decision.source_config, sort_keys=True, default=str),
                "new_config_json": json.dumps(decision.new_config, sort_keys=True, default=str),
                "explored_json": json.dumps(changed, sort_keys=True, default=str),
            }
        )
        self._dirty = True

    def touch(self) -> None:
        """Mark the trials table as changed (a trial started, ended or failed)."""
        self._dirty = True

    @property
    def last_flush(self) -> float:
        """When the tables were last written (``time.monotonic()``)."""
        return self._last_flush

    def maybe_flush(self) -> None:
        if not self._dirty:
            return
        if (
            time.monotonic() - self._last_flush >= self.flush_every_s
            or len(self.book.trials) - self._held_after_flush >= self.max_new_trials
        ):
            self.flush()

    # ------------------------------------------------------------------ output

    def flush(self) -> None:
        """Write buffered reports as a new part, and replace the trials table."""
        if self._rows:
            self._write_part()
        self._write_trials()
        self._held_after_flush = len(self.book.trials)
        if len(self._decisions) != self._decisions_written:
            self._write_decisions()
        self._last_flush = time.monotonic()
        self._dirty = False

    def forget(self, trial_id: str) -> None:
        """Leave the reports and row ``trial_id`` has so far out of the tables (a trial lost with its
        driver; call it with none of its reports buffered). A trial that runs again under the same
        id (inline, the restored searcher suggests it again) keeps what it reports from now on."""
        self._forgotten[trial_id] = self._parts
        self._forgotten_rows.add(trial_id)
        self._dirty = True

    def finalize(self) -> None:
        """Flush, then compact the parts into ``results.parquet``."""
        self.flush()
        compact(self.folder, self.metric_types, drop=self._forgotten)
        with contextlib.suppress(OSError):  # empty once every open part is sealed
            self.open_dir.rmdir()

    def _write_part(self) -> None:
        """The buffered reports become the next Parquet part; its open twin is then removed
        (a kill in between leaves both: readers and resume take the Parquet one)."""
        table = layout.reports_table(self._rows, self.metric_types, _metadata(self.book))
        _write_table_atomic(table, self.parts_dir / layout.part_name(self._parts))
        if self._open_part is not None:
            self._open_part.close()
            self._open_part = None
            self._open_path().unlink(missing_ok=True)
        self._parts += 1
        self._rows = []

    def _write_trials(self) -> None:
        """Replace the trials table: the rows it had stay in place, a held trial's row replaces its
        old one (new trials last), a forgotten trial's goes.

        Retired trials' records are gone from memory (:meth:`ExperimentBook.retire`), so their
        rows are streamed from the table written last, a batch at a time: what a flush holds
        does not grow with the experiment. Then the finished records just written are retired.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        base = list(fixed_schema(TRIAL_COLUMNS))
        config_fields = [pa.field(name, kind.arrow()) for name, kind in self.config_types.items()]
        last_fields = [pa.field(f"last/{name}", kind.arrow()) for name, kind in self.metric_types.items()]
        schema = pa.schema(base + config_fields + last_fields, metadata=_metadata(self.book))
        rows = [self._trial_row(record) for record in self.book.trials.values()]
        held = pa.Table.from_pydict({field.name: [row.get(field.name) for row in rows] for field in schema}, schema=schema)
        front = {record.trial_id for record in self.book.front()} if self.book.multi_objective else None
        path = self.folder / layout.TRIALS
        unplaced = {trial_id: i for i, trial_id in enumerate(self.book.trials)}  # held rows not yet written
        chunks: list[Any] = []  # written as one row group once they hold TRIALS_BATCH rows
        written = schema if front is None else schema.append(pa.field(PARETO_COLUMN, pa.bool_()))
        with _replacing(path) as tmp, pq.ParquetWriter(tmp, written) as writer:
            if self.book.retired.total:
                with pq.ParquetFile(path) as last:
                    for batch in last.iter_batches(batch_size=TRIALS_BATCH):
                        chunks.append(self._merged(pa.Table.from_batches([batch]), held, unplaced))
                        if sum(chunk.num_rows for chunk in chunks) >= TRIALS_BATCH:
                            writer.write_table(_with_front(pa.concat_tables(chunks), front))
                            chunks = []
            chunks.append(held.take(pa.array(list(unplaced.values()), type=pa.int64())))
            writer.write_table(_with_front(pa.concat_tables(chunks), front))
        self._forgotten_rows.clear()
        self.book.retire()

    def _merged(self, earlier: Any, held: Any, unplaced: dict[str, int]) -> Any:
        """Rows of the last table with the held rows that replace some of them (taken out of
        ``unplaced``), in ``held``'s schema."""
        import pyarrow as pa

        kept: list[int] = []  # rows of ``earlier`` that stay
        taken: list[int] = []  # rows of ``held`` that replace one
        order: list[int] = []  # rows of [kept..., taken...], encoded: held ones as -1 - place
        for i, trial_id in enumerate(earlier.column("trial_id").to_pylist()):
            if trial_id in unplaced:
                order.append(-1 - len(taken))
                taken.append(unplaced.pop(trial_id))
            elif trial_id not in self._forgotten_rows:
                order.append(len(kept))
                kept.append(i)
        merged = pa.concat_tables([
            layout.conform(earlier.take(pa.array(kept, type=pa.int64())), held.schema),
            held.take(pa.array(taken, type=pa.int64())),
        ])  # fmt: skip
        return merged.take(pa.array([len(kept) - 1 - at if at < 0 else at for at in order], type=pa.int64()))

    def _write_decisions(self) -> None:
        import pyarrow as pa

        schema = fixed_schema(DECISION_COLUMNS)
        columns = {field.name: [row[field.name] for row in self._decisions] for field in schema}
        table = pa.Table.from_pydict(columns, schema=schema.with_metadata(_metadata(self.book)))
        _write_table_atomic(table, self.folder / layout.PBT_DECISIONS)
        self._decisions_written = len(self._decisions)

    def _trial_row(self, record: TrialRecord) -> dict[str, Any]:
        metric_last = record.last.get(self.book.metric)
        row: dict[str, Any] = {
            "trial_id": record.trial_id,
            "status": record.status.value,
            "iterations": record.iterations,
            "time_total_s": record.time_total_s,
            "started_at": layout.timestamp(record.started_at),
            "ended_at": layout.timestamp(record.ended_at),
            "metric": self.book.metric,
            "metric_last": float(metric_last) if is_number(metric_last) else None,
            "metric_best": record.best,
            "metric_best_iteration": record.best_iteration,
            "error": record.error,
            "num_failures": record.num_failures,
            "resources_cpu": record.resources.get("CPU", 0.0),
            "resources_gpu": record.resources.get("GPU", 0.0),
            "gpu_ids": record.gpu_ids,
            "node_ip": record.node_ip,
            "trial_dir": record.trial_dir,
            **_checkpoint_cells(record),
            "config_json": json.dumps(record.config, sort_keys=True, default=str),
        }
        for name, value in flatten_config(record.config).items():
            kind = self.config_types.get(name)
            if kind is not None:
                row[name] = coerce(value, kind)
        for name, value in record.last.items():
            kind = self.metric_types.get(name)
            if kind is not None:
                row[f"last/{name}"] = coerce(value, kind)
        return row


def _checkpoint_cells(record: TrialRecord) -> dict[str, Any]:
    best = record.checkpoint_best
    last = record.checkpoints[-1] if record.checkpoints else None
    return {
        "checkpoint_best": best.name if best else None,
        "checkpoint_best_iteration": best.iteration if best else None,
        "checkpoint_best_value": best.value if best else None,
        "checkpoint_last": last.name if last else None,
        "checkpoint_last_iteration": last.iteration if last else None,
    }


TRIALS_BATCH = 4096  # rows of the trials table read, and written as one row group, at a time


def _with_front(table: Any, front: set[str] | None) -> Any:
    """``table`` with its ``pareto`` column (several metrics): the trials in ``front``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if front is None:
        return table
    flags = pc.is_in(table.column("trial_id"), value_set=pa.array(sorted(front), type=pa.string()))
    return table.append_column(pa.field(PARETO_COLUMN, pa.bool_()), flags)


def unsealed_parts(folder: Path) -> list[Path]:
    """The open parts of ``folder`` whose reports are in no Parquet part (:func:`layout.unsealed`)."""
    open_dir = folder / layout.RESULTS_OPEN
    if not open_dir.is_dir():
        return []
    parts_dir = folder / layout.RESULTS_PARTS
    parts = [path.name for path in parts_dir.iterdir()] if parts_dir.is_dir() else []
    return [open_dir / name for name in layout.unsealed((path.name for path in open_dir.iterdir()), parts)]


def read_open_part(path: Path) -> Any:
    """An open part's reports as a results table (metric columns typed from their values); a
    last line cut short by a kill is skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:  # sealed meanwhile: its Parquet twin holds the reports
        text = ""
    return layout.open_part_table(text)


def seal_open_parts(folder: Path, metadata: Mapping[bytes, bytes] | None = None) -> None:
    """Make Parquet parts of the open parts a killed run left (``resume`` does this first);
    an open part whose Parquet twin exists is a duplicate and is removed."""
    open_dir = folder / layout.RESULTS_OPEN
    if not open_dir.is_dir():
        return
    unsealed = set(unsealed_parts(folder))
    for path in sorted(open_dir.glob("part-*.jsonl")):
        if path in unsealed:
            table = read_open_part(path)
            if table.num_rows:
                parts_dir = folder / layout.RESULTS_PARTS
                parts_dir.mkdir(exist_ok=True)
                _write_table_atomic(table.replace_schema_metadata(metadata), parts_dir / f"{path.stem}.parquet")
        path.unlink()


def all_reports(folder: Path) -> Any:
    """Every report ``folder`` holds (``results.parquet``, the parts, the open parts not sealed),
    one per trial and iteration (a report repeated after a restore replaces the earlier one)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    opened = [read_open_part(path) for path in unsealed_parts(folder)]  # first: one sealed meanwhile is in the parts
    parts_dir = folder / layout.RESULTS_PARTS
    files = [folder / layout.RESULTS] if (folder / layout.RESULTS).is_file() else []
    files += sorted(parts_dir.glob("part-*.parquet")) if parts_dir.is_dir() else []
    tables = [pq.read_table(path) for path in files] + opened
    schema = layout.unified_results_schema([table.schema for table in tables])
    if not tables:
        return schema.empty_table()
    return _latest_reports(pa.concat_tables([layout.conform(table, schema) for table in tables]))


def _metadata(book: ExperimentBook) -> dict[bytes, bytes]:
    meta = {
        b"raytuner.schema_version": str(SCHEMA_VERSION).encode(),
        b"raytuner.metric": book.metric.encode(),
        b"raytuner.mode": (b"max" if book.sign > 0 else b"min"),
    }
    if book.multi_objective:
        meta[OBJECTIVES_KEY] = encode_objectives(book.objectives)
    return meta


def compact(
    folder: Path, metric_types: Mapping[str, ColumnType] | None = None, drop: Mapping[str, int] | None = None
) -> Path | None:
    """Merge ``results.parts/`` (and an existing ``results.parquet``) into ``results.parquet``.

    Works on the parts a crashed run left behind: column types are unified by the schema
    rule (a metric with any non-number is a string column everywhere). ``drop`` maps a trial
    to the first part whose reports of it are kept (:meth:`ResultsStore.forget`).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts_dir = folder / layout.RESULTS_PARTS
    target = folder / layout.RESULTS
    sources = sorted(parts_dir.glob("part-*.parquet")) if parts_dir.exists() else []
    if not sources and not drop and target.exists():
        _remove_if_empty(parts_dir)
        return target
    drop = drop or {}
    tables = ([_without(pq.read_table(target), set(drop))] if target.exists() else []) + [
        _without(pq.read_table(p), {t for t, first in drop.items() if _part_number(p) < first}) for p in sources
    ]
    schema = layout.unified_results_schema([table.schema for table in tables], metric_types)
    unified = [layout.conform(table, schema) for table in tables]
    merged = _latest_reports(pa.concat_tables(unified)) if unified else schema.empty_table()
    _write_table_atomic(merged, target)
    for path in sources:
        path.unlink()
    _remove_if_empty(parts_dir)
    return target


def _part_number(path: Path) -> int:
    return int(path.stem.split("-")[1])


def _without(table: Any, trial_ids: set[str]) -> Any:
    """``table`` less the reports of ``trial_ids``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not trial_ids:
        return table
    return table.filter(pc.invert(pc.is_in(table.column("trial_id"), value_set=pa.array(sorted(trial_ids)))))


def _remove_if_empty(folder: Path) -> None:
    """A folder of parts left with none (a resume that added no report) goes: a mirror
    removes the bucket's copy only once the working copy has none."""
    with contextlib.suppress(OSError):  # missing, or holding parts
        folder.rmdir()


def _latest_reports(table: Any) -> Any:
    """One row per (trial, iteration): a report repeated after a restore replaces the earlier one."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if table.num_rows == 0:
        return table
    keys = pa.table({"t": table.column("trial_id"), "i": table.column("training_iteration")})
    keys = keys.append_column("row", pa.array(range(table.num_rows), type=pa.int64()))
    last = keys.group_by(["t", "i"], use_threads=False).aggregate([("row", "max")])
    if last.num_rows == table.num_rows:
        return table
    rows = last.column("row_max")
    return table.take(pc.take(rows, pc.sort_indices(rows)))  # the kept rows, in their original order
