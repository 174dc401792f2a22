"""``search_decisions.parquet``: what ``search.algorithm: auto`` started with and each switch
(:class:`~raytuner.search.auto.SearchDecision`; columns in docs/results.md).

Decisions are few (one at the start, rarely more than one switch), so the table is rewritten
whole at each new one. A resumed run's searcher hands out the decisions it restored again;
those already in the table (by ``number``) are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raytuner.results import layout

if TYPE_CHECKING:
    from raytuner.search.auto import SearchDecision


def record(folder: Path, decisions: Sequence[SearchDecision]) -> list[SearchDecision]:
    """Add ``decisions`` not yet in ``folder``'s table; returns those added (the new ones)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = folder / layout.SEARCH_DECISIONS
    rows = read_decisions(folder)
    known = {row["number"] for row in rows}
    new = [d for d in decisions if d.number not in known]
    if not new:
        return []
    rows += [
        {
            "number": d.number,
            "time": layout.timestamp(d.time),
            "trials": d.trials,
            "algorithm": d.algorithm.value,
            "previous": None if d.previous is None else d.previous.value,
            "reason": d.reason,
            "told": d.told,
        }
        for d in new
    ]
    schema = pa.schema(
        [
            ("number", pa.int64()),
            ("time", pa.timestamp("ms", tz="UTC")),
            ("trials", pa.int64()),
            ("algorithm", pa.string()),
            ("previous", pa.string()),
            ("reason", pa.string()),
            ("told", pa.int64()),
        ]
    )
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(pa.Table.from_pylist(sorted(rows, key=lambda r: r["number"]), schema=schema), tmp)
    os.replace(tmp, path)
    return new


def read_decisions(folder: Path) -> list[dict[str, Any]]:
    """The table's rows, oldest first; empty when ``auto`` was not used (or before it was recorded)."""
    import pyarrow.parquet as pq

    path = folder / layout.SEARCH_DECISIONS
    if not path.is_file():
        return []
    rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    return rows
