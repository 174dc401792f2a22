"""Which of a trial's checkpoints stay on disk: its last ones, or its best by a metric, and always its latest.

``checkpoint: {keep: K}`` keeps the last K; with ``score`` it keeps the K best by that metric.
Either way the latest stays besides them until a newer one comes (a resumed or retried trial,
and PBT, go on from it). Ranked by the metric, a NaN or missing value is lowest and of equal
values the later one is higher: the rule of Ray Tune's own checkpoint manager
(``ray/train/_internal/checkpoint_manager.py``, Ray 2.60). raytuner applies it on both
backends, and records each trial's best and latest checkpoint (``trials.parquet``): the inline
backend deletes what it drops at once (its resume trusts ``checkpoints.json``, written first);
on Ray, Ray keeps every checkpoint and :class:`DeferredDrops` deletes them later.
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


class DeferredDrops:
    """Ray backend: deletes the checkpoints the rule drops once no saved experiment state can
    still restore a trial from them.

    Ray restores an unfinished trial from the latest checkpoint its last saved experiment state
    names, and saves that state only every 10 s or more. Deleted at once (Ray's own
    ``num_to_keep`` does so), a checkpoint that was a trial's latest when the state was saved
    is gone when a driver killed just after is resumed, and the trial fails ("Could not recover
    from checkpoint as it does not exist on storage anymore"): with ``score`` that is any
    checkpoint that is not among the best, at its successor. So a dropped checkpoint is deleted
    once Ray has saved its state twice since (the first save may still be uploading to object
    storage): by then no saved state names it as a trial's latest. At the run's end, after Ray's
    final save, the rest go.
    """

    def __init__(self) -> None:
        self._since: list[tuple[Any, str]] = []  # dropped since the last save: (filesystem, path)
        self._older: list[list[tuple[Any, str]]] = []  # dropped before each of the saves since

    def drop(self, filesystem: Any, path: str) -> None:
        self._since.append((filesystem, path))

    def saved(self) -> None:
        """Ray is saving its experiment state."""
        self._older.append(self._since)
        self._since = []
        while len(self._older) > 2:
            _delete(self._older.pop(0))

    def ended(self) -> None:
        """The run ended, Ray's final state saved: delete what was dropped before it."""
        for batch in self._older:
            _delete(batch)
        self._older = []


def _delete(batch: list[tuple[Any, str]]) -> None:
    import contextlib

    for filesystem, path in batch:
        with contextlib.suppress(OSError):  # gone already, or storage unreachable: a leftover, not a loss
            filesystem.delete_dir(path)
