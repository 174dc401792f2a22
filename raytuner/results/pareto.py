"""The Pareto front of a multi-objective experiment: the trials no other trial beats on every metric.

A trial is on the front when it completed and no other completed trial is at least as good
on every objective and strictly better on one. Each objective is judged by the trial's last
reported value (what the trained model ended with, and what the searcher was told), not its
best: the best values of different metrics come from different iterations and together
describe no model that existed. Trials stopped early, failed or still running are not
candidates. Two trials with identical values are both on the front.

The front is computed whenever the trials table is written (every flush while running and
at the end) and again whenever raytuner reads the table, so a running or crashed experiment
shows the front of the trials completed so far.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

# trials.parquet metadata: the objectives as JSON [[metric, mode], ...] (only with several metrics)
OBJECTIVES_KEY = b"raytuner.objectives"
PARETO_COLUMN = "pareto"
CANDIDATE_STATUS = "completed"


def front_mask(points: Sequence[Sequence[float] | None]) -> list[bool]:
    """Which points are non-dominated, every coordinate to be minimized; None is never on the front.

    Sorted lexicographically, a point can only be dominated by points before it, and if it is
    dominated at all then some point already on the front dominates it (dominance is
    transitive), so each point is compared with the front found so far: O(n log n + n f k).
    """
    order = sorted((i for i, p in enumerate(points) if p is not None), key=lambda i: tuple(points[i] or ()))
    front: list[Sequence[float]] = []
    mask = [False] * len(points)
    for i in order:
        point = points[i]
        assert point is not None
        if not any(_dominates(other, point) for other in front):
            front.append(point)
            mask[i] = True
    return mask


def _dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def as_number(value: Any) -> float | None:
    """A finite float, from a number or a JSON number in a string column; else None."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def oriented(values: Sequence[Any], signs: Sequence[float]) -> list[float] | None:
    """``values`` with every objective turned into one to minimize; None if any is missing."""
    numbers = [as_number(v) for v in values]
    if any(n is None for n in numbers):
        return None
    return [-sign * (n or 0.0) for n, sign in zip(numbers, signs, strict=True)]


def objectives_of(metadata: Mapping[bytes, bytes] | None) -> list[tuple[str, str]]:
    """The (metric, mode) pairs a trials table records; empty for a single-metric experiment."""
    raw = (metadata or {}).get(OBJECTIVES_KEY)
    if not raw:
        return []
    try:
        pairs = json.loads(raw)
    except ValueError:
        return []
    return [(str(metric), str(mode)) for metric, mode in pairs] if isinstance(pairs, list) else []


def encode_objectives(objectives: Sequence[tuple[str, str]]) -> bytes:
    return json.dumps([list(pair) for pair in objectives]).encode()


def sign_of(mode: str) -> float:
    return 1.0 if mode == "max" else -1.0


def front_of_rows(rows: Sequence[Mapping[str, Any]], objectives: Sequence[tuple[str, str]]) -> list[bool]:
    """The ``pareto`` flag of each trials-table row (``status`` and ``last/<metric>`` keys)."""
    signs = [sign_of(mode) for _, mode in objectives]
    points = [
        oriented([row.get(f"last/{metric}") for metric, _ in objectives], signs)
        if row.get("status") == CANDIDATE_STATUS
        else None
        for row in rows
    ]
    return front_mask(points)


def with_pareto(table: pa.Table) -> pa.Table:
    """``table`` (a trials table) with its ``pareto`` column computed afresh; unchanged if single-metric."""
    import pyarrow as pa

    objectives = objectives_of(table.schema.metadata)
    if not objectives:
        return table
    wanted = ["status", *(f"last/{metric}" for metric, _ in objectives)]
    present = [name for name in wanted if name in table.column_names]
    rows = table.select(present).to_pylist()
    flags = pa.array(front_of_rows(rows, objectives), type=pa.bool_())
    index = table.schema.get_field_index(PARETO_COLUMN)
    field = pa.field(PARETO_COLUMN, pa.bool_())
    if index >= 0:
        return table.set_column(index, field, flags)
    return table.append_column(field, flags)


def sort_front(rows: list[dict[str, Any]], objectives: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """Front rows ordered by the first objective, best first (then the second, ...)."""
    signs = [sign_of(mode) for _, mode in objectives]

    def key(row: dict[str, Any]) -> list[float]:
        return oriented([row.get(f"last/{metric}") for metric, _ in objectives], signs) or [math.inf] * len(signs)

    return sorted(rows, key=key)
