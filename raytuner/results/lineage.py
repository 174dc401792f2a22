"""PBT lineage: which trial copied which, and the hyperparameter schedule a trial followed.

Reads ``pbt_decisions.parquet`` (see docs/results.md). A trial's history is its own
training after its last exploit, preceded by the history of the trial it copied up to the
copied step, and so on back to an initial configuration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raytuner.results import layout
from raytuner.results.folder import Folder


@dataclass(frozen=True)
class Decision:
    """One exploit/explore step of PBT or PB2 (a row of ``pbt_decisions.parquet``):
    ``trial_id`` copied ``source_trial_id``'s checkpoint and went on with ``new_config``.

    Attributes:
        time: when the decision was taken (Unix seconds; None when not recorded).
        trial_id: the trial whose weights and configuration were replaced.
        source_trial_id: the better trial it cloned.
        step: the ``training_iteration`` at which the trial was perturbed.
        source_step: the source trial's ``training_iteration`` when it was cloned.
        old_config: the configuration before the decision.
        source_config: the source trial's configuration.
        new_config: the configuration after explore.
    """

    time: float | None
    trial_id: str
    source_trial_id: str
    step: int
    source_step: int
    old_config: dict[str, Any]
    source_config: dict[str, Any]
    new_config: dict[str, Any]


@dataclass(frozen=True)
class Segment:
    """From ``start_step`` on (until the next segment), training ran ``config`` in ``trial_id``."""

    start_step: int
    trial_id: str
    config: dict[str, Any]


def read_exploits(folder: Path | Folder) -> list[Decision]:
    """Every decision, oldest first; empty for experiments without PBT.

    Raises:
        OSError, pyarrow's errors: the table exists but cannot be read.
    """

    where = folder if isinstance(folder, Folder) else Folder.local(folder)
    if where.kind_of(layout.PBT_DECISIONS) != "file":
        return []
    rows = where.read_table(layout.PBT_DECISIONS).to_pylist()
    decisions = [
        Decision(
            time=layout.seconds(row.get("time")),
            trial_id=str(row["trial_id"]),
            source_trial_id=str(row["source_trial_id"]),
            step=int(row.get("step") or 0),
            source_step=int(row.get("source_step") or 0),
            old_config=_json_dict(row.get("old_config_json")),
            source_config=_json_dict(row.get("source_config_json")),
            new_config=_json_dict(row.get("new_config_json")),
        )
        for row in rows
    ]
    return sorted(decisions, key=lambda d: d.time or 0.0)


def _json_dict(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text) if isinstance(text, str) else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def schedule_of(trial_id: str, exploits: list[Decision], finals: dict[str, dict[str, Any]]) -> list[Segment]:
    """The segments of configuration that produced ``trial_id``'s final model, oldest first.

    Args:
        trial_id: the trial whose history to trace (usually the best).
        exploits: every decision (:func:`read_exploits`).
        finals: each trial's final configuration (the trials table's ``config_json``).
    """
    return _history(trial_id, None, exploits, finals)


def _history(
    trial_id: str, before: float | None, exploits: list[Decision], finals: dict[str, dict[str, Any]]
) -> list[Segment]:
    own = [e for e in exploits if e.trial_id == trial_id and (before is None or (e.time or 0.0) < before)]
    if not own:
        mine = [e for e in exploits if e.trial_id == trial_id]
        initial = mine[0].old_config if mine else finals.get(trial_id, {})
        return [Segment(0, trial_id, initial)]
    last = own[-1]
    earlier = _history(last.source_trial_id, last.time or 0.0, exploits, finals)
    kept = [segment for segment in earlier if segment.start_step < last.source_step] or earlier[:1]
    return [*kept, Segment(last.source_step, trial_id, last.new_config)]


def best_schedule(folder: Path | Folder, trial_id: str) -> list[Segment]:
    """The schedule ``trial_id`` followed, or [] for an experiment without PBT decisions."""

    where = folder if isinstance(folder, Folder) else Folder.local(folder)
    exploits = read_exploits(where)
    if not exploits:
        return []
    table = where.read_table(layout.TRIALS, columns=["trial_id", "config_json"]).to_pylist()
    finals = {row["trial_id"]: json.loads(row["config_json"]) for row in table}
    return schedule_of(trial_id, exploits, finals)
