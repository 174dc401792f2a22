"""Which of a trial's checkpoints stay on disk: its last ones, or its best by a metric, and always its latest.

``checkpoint: {keep: K}`` keeps the last K; with ``score`` it keeps the K best by that metric.
Either way the latest stays besides them until a newer one comes (a resumed or retried trial,
and PBT, go on from it). This is the rule of Ray Tune's own checkpoint manager
(``ray/train/_internal/checkpoint_manager.py``, Ray 2.60): ranked by the score, a NaN or
missing value lowest and of equal scores the later one higher. The inline backend applies it
itself; on Ray, Ray applies it and raytuner's books follow with this same rule to record each
trial's best and latest checkpoint (``trials.parquet``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from raytuner.results.records import Kept, is_number, metrics_of

if TYPE_CHECKING:
    from raytuner.spec.models import Spec


@dataclass(frozen=True)
class Retention:
    """A spec's checkpoint policy: how many to keep, and by what.

    Attributes:
        keep: how many besides the latest (None: all).
        metric: what ranks a trial's checkpoints (``checkpoint.score``, else the spec's metric).
        sign: +1 when a larger ``metric`` is better.
        scored: keep the best by ``metric`` (``checkpoint.score`` given), else the last ones.
    """

    keep: int | None
    metric: str
    sign: float
    scored: bool

    @classmethod
    def of(cls, spec: Spec) -> Retention:
        objective = spec.checkpoint_objective
        return cls(spec.checkpoint.keep, objective.metric, objective.sign, spec.checkpoint.score is not None)

    def value(self, result: Mapping[str, Any]) -> float | None:
        """The ranking metric in a checkpoint's report; None when missing or not a number (NaN too)."""
        value = result.get(self.metric)
        if value is None:
            value = metrics_of(result).get(self.metric)  # "a/b" reported as {"a": {"b": ...}}
        return float(value) if is_number(value) and not math.isnan(value) else None

    def kept(self, values: Sequence[float | None]) -> set[int]:
        """Of checkpoints made in this order with these values, the places of those that stay."""
        count = len(values)
        if self.keep is None or count <= self.keep:
            return set(range(count))
        if self.scored:
            ranked = sorted(range(count), key=lambda i: (_rank(values[i], self.sign), i))
            chosen = set(ranked[-self.keep :])
        else:
            chosen = set(range(count - self.keep, count))
        return chosen | {count - 1}

    def best(self, values: Sequence[float | None]) -> int | None:
        """The place of the best checkpoint by ``metric`` (of equal ones the later), None for none."""
        if not values:
            return None
        return max(range(len(values)), key=lambda i: (_rank(values[i], self.sign), i))

    def add(self, kept: list[Kept], new: Kept) -> list[Kept]:
        """A trial's kept checkpoints once ``new`` is made (one of the same folder, written again
        after a resume, is replaced)."""
        entries = [entry for entry in kept if entry.name != new.name] + [new]
        stay = self.kept([entry.value for entry in entries])
        return [entry for i, entry in enumerate(entries) if i in stay]


def _rank(value: float | None, sign: float) -> tuple[bool, float]:
    return (False, -math.inf) if value is None else (True, sign * value)
