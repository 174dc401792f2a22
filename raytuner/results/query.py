"""Selecting from an experiment's tables: ``--columns`` (globs), ``--where``, sorting.

The reports table can use the trials table's columns too (``config/lr``, ``status``): they
are looked up by ``trial_id`` batch by batch, so ``--where 'status == "error"'`` and
``--columns 'trial_id,training_iteration,loss,config/*'`` work on reports without a join in
memory.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from raytuner.errors import UsageError
from raytuner.results.tables import ExperimentTables
from raytuner.results.where import Filter, parse_where

if TYPE_CHECKING:
    import pyarrow as pa


class TableName(str, Enum):
    """Which table: one row per trial, or one row per report."""

    TRIALS = "trials"
    RESULTS = "results"


def select_columns(available: list[str], spec: str | None) -> list[str]:
    """The columns a ``--columns`` list names, in its order (``*`` and ``?`` globs allowed).

    Raises:
        UsageError: an item matches no column.
    """
    if spec is None or not spec.strip():
        return list(available)
    chosen: dict[str, None] = {}
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        matched = [name for name in available if fnmatch.fnmatchcase(name, item)]
        if not matched:
            close = [name for name in available if item.strip("*?").lower() in name.lower()][:8]
            hint = f"; similar: {', '.join(close)}" if close else f"; columns: {', '.join(available[:15])}..."
            raise UsageError(f"--columns: no column matches {item!r}{hint}")
        chosen.update(dict.fromkeys(matched))
    return list(chosen)


def _apply(table_or_batch: pa.Table, condition: Filter) -> pa.Table:
    import pyarrow as pa

    try:
        return table_or_batch.filter(condition.expression)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        hint = 'numbers compare with numbers, strings with "quoted text"'
        raise UsageError(f"--where {condition.text!r}: {_first_line(exc)} ({hint})") from exc


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def trial_rows(
    tables: ExperimentTables,
    columns: str | None = None,
    where: str | None = None,
    sort: str | None = None,
    descending: bool = False,
    limit: int | None = None,
) -> pa.Table:
    """The trials table filtered by ``where``, sorted by ``sort`` (nulls last), cut to ``limit``.

    Raises:
        UsageError: an unknown column, or a ``where`` that cannot be read or evaluated.
    """
    import pyarrow.compute as pc

    table = tables.trials
    if where:
        table = _apply(table, parse_where(where, table.column_names))
    if sort:
        if sort not in table.column_names:
            raise UsageError(f"--sort: no column {sort!r}; columns: {', '.join(table.column_names[:15])}...")
        order = "descending" if descending else "ascending"
        table = table.take(pc.sort_indices(table, sort_keys=[(sort, order, "at_end")]))
    if limit is not None:
        table = table.slice(0, limit)
    return table.select(select_columns(table.column_names, columns))


@dataclass(frozen=True)
class ResultSelection:
    """What a query over the reports reads: its output schema and the batches."""

    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]


def result_rows(tables: ExperimentTables, columns: str | None = None, where: str | None = None) -> ResultSelection:
    """Every report (streamed), with trial columns joined where asked for, filtered by ``where``.

    Raises:
        UsageError: an unknown column, or a ``where`` that cannot be read.
    """
    import pyarrow as pa

    own = tables.results_schema.names
    extra = [name for name in tables.trials.column_names if name not in own]
    chosen = select_columns(own if columns is None else own + extra, columns)
    condition = parse_where(where, own + extra) if where else None
    needed_trial = [n for n in extra if n in chosen or (condition is not None and n in condition.columns)]
    read = [n for n in own if n in chosen or n == "trial_id" or (condition is not None and n in condition.columns)]
    fields = [
        tables.results_schema.field(n) if n in own else tables.trials.schema.field(n) for n in chosen
    ]
    schema = pa.schema(fields, metadata=tables.metadata())
    return ResultSelection(schema, _batches(tables, read, needed_trial, condition, schema))


def _batches(
    tables: ExperimentTables,
    read: list[str],
    trial_columns: list[str],
    condition: Filter | None,
    schema: pa.Schema,
) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa
    import pyarrow.compute as pc

    trials = tables.trials
    for batch in tables.iter_results(read):
        table = pa.Table.from_batches([batch])
        if trial_columns:
            index = pc.index_in(batch.column("trial_id"), value_set=trials.column("trial_id"))
            for name in trial_columns:
                table = table.append_column(trials.schema.field(name), trials.column(name).take(index))
        if condition is not None:
            table = _apply(table, condition)
        if table.num_rows:
            yield from table.select(schema.names).cast(schema).to_batches()


@dataclass(frozen=True)
class FrontTrial:
    """One trial on the Pareto front: its last value of each objective, and its configuration."""

    trial_id: str
    status: str
    iterations: int
    values: dict[str, float | None]
    config: dict[str, Any]


@dataclass(frozen=True)
class Front:
    """A multi-objective experiment's Pareto front, sorted by the first objective (best first)."""

    objectives: list[tuple[str, str]]
    trials: list[FrontTrial]
    size: int
    completed: int


def pareto_front(tables: ExperimentTables, limit: int | None = None) -> Front | None:
    """The Pareto front of completed trials (see :mod:`raytuner.results.pareto`), cut to ``limit``;
    None for a single-metric experiment."""
    import json

    from raytuner.results.pareto import CANDIDATE_STATUS, PARETO_COLUMN, as_number, objectives_of, sort_front

    objectives = objectives_of(tables.trials.schema.metadata)
    if not objectives:
        return None
    rows = tables.trials.to_pylist()
    on = sort_front([row for row in rows if row.get(PARETO_COLUMN)], objectives)
    chosen = on if limit is None else on[:limit]
    trials = [
        FrontTrial(
            trial_id=str(row["trial_id"]),
            status=str(row["status"]),
            iterations=int(row.get("iterations") or 0),
            values={metric: as_number(row.get(f"last/{metric}")) for metric, _ in objectives},
            config=json.loads(row["config_json"]) if row.get("config_json") else {},
        )
        for row in chosen
    ]
    completed = sum(1 for row in rows if row.get("status") == CANDIDATE_STATUS)
    return Front(objectives, trials, len(on), completed)
