"""Which of a trial's checkpoints stay on disk: its last ones, or its best by a metric, and always its latest.

``checkpoint: {keep: K}`` keeps the last K; with ``score`` it keeps the K best by that metric.
Either way the latest stays besides them until a newer one comes (a resumed or retried trial,
and PBT, go on from it). Ranked by the metric, a NaN or missing value is lowest and of equal
values the later one is higher: the rule of Ray Tune's own checkpoint manager
(``ray/train/_internal/checkpoint_manager.py``, Ray 2.60). raytuner applies it on both
backends, and records each trial's best and latest checkpoint (``trials.parquet``). Each trial's
folder lists the checkpoints it keeps (``checkpoints.json``), written before anything the
list no longer names is deleted, and a resume trusts the list: the inline backend deletes what
it drops at once; on Ray, Ray keeps every checkpoint, :class:`DeferredDrops` deletes them
later, and a resumed run deletes what that left (:func:`relist`).
"""

from __future__ import annotations

import json
import math
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from raytuner.results.records import Kept, is_number, metrics_of

if TYPE_CHECKING:
    from raytuner.spec.models import Spec

CHECKPOINTS_FILE = "checkpoints.json"  # in each trial's folder: [folder, iteration, time_total_s, value] per kept one
PREFIX = "checkpoint_"  # Ray's checkpoint folders: checkpoint_NNNNNN, numbered from 0 in each trial's folder


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


def write_listing(filesystem: Any, folder: str, kept: Sequence[Kept]) -> None:
    """Write ``checkpoints.json`` into the trial folder ``folder`` (on ``filesystem``, pyarrow's)
    whole or not at all: locally through a rename, on object storage in one upload."""
    import pyarrow.fs as pafs

    rows = [[posixpath.basename(entry.name), entry.iteration, entry.time_total_s, entry.value] for entry in kept]
    if isinstance(filesystem, pafs.LocalFileSystem):
        from pathlib import Path

        from raytuner.results.store import write_json_atomic

        write_json_atomic(Path(folder, CHECKPOINTS_FILE), rows)
        return
    with filesystem.open_output_stream(posixpath.join(folder, CHECKPOINTS_FILE)) as out:
        out.write(json.dumps(rows).encode())


def relist(filesystem: Any, folder: str, index: int, latest: Kept | None, restored: set[str]) -> list[Kept] | None:
    """A resumed Ray run: a trial's kept checkpoints, with the folders its list no longer names deleted.

    Ray resumes a trial from the latest checkpoint its saved state names (``latest``, None for
    none or one in another trial's folder) and numbers the trial's next checkpoint ``index`` + 1,
    so the folders numbered higher were made after that save and are made again: they are no
    longer the trial's. The rest the list names stay; so do ``latest`` (the list may have
    dropped it after that save) and every folder a restored trial resumes from (``restored``,
    full paths: PBT resumes a trial from another's). Any other checkpoint folder was dropped,
    its deletion cut short by the driver's end. The list is written again before deleting.

    Returns:
        The kept checkpoints, oldest first (names ``<trial folder>/checkpoint_NNNNNN``), or None
        where the trial's folder has no list (a run before lists on Ray): nothing is deleted then.
    """
    import pyarrow.fs as pafs

    try:
        with filesystem.open_input_stream(posixpath.join(folder, CHECKPOINTS_FILE)) as stream:
            rows = json.loads(stream.read())
    except FileNotFoundError:
        return None
    trial = posixpath.basename(folder.rstrip("/"))
    found = filesystem.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    on_disk = {info.base_name: _number(info.base_name) for info in found if info.type == pafs.FileType.Directory}
    numbered = {name: number for name, number in on_disk.items() if number is not None}
    listed = {str(row[0]): Kept(f"{trial}/{row[0]}", int(row[1]), row[3], row[2]) for row in rows}
    stays = {name for name, number in numbered.items() if name in listed and number <= index}
    kept = [listed[name] for name in stays]
    if latest is not None and posixpath.basename(latest.name) in set(numbered) - stays:
        stays.add(posixpath.basename(latest.name))
        kept.append(latest)
    kept.sort(key=lambda entry: numbered[posixpath.basename(entry.name)])
    write_listing(filesystem, folder, kept)
    doomed = [posixpath.join(folder, name) for name in sorted(set(numbered) - stays)]
    _delete([(filesystem, path) for path in doomed if path not in restored])
    return kept


def _number(name: str) -> int | None:
    """The number of Ray's checkpoint folder ``name`` (None for another name)."""
    digits = name[len(PREFIX) :]
    return int(digits) if name.startswith(PREFIX) and digits.isdigit() else None
