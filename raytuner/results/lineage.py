"""PBT lineage: which trial copied which, and the hyperparameter schedule a trial followed.

Reads ``pbt_decisions.parquet`` (see docs/results.md). A trial's history is its own
training after its last exploit, preceded by the history of the trial it copied up to the
copied step, and so on back to an initial configuration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from raytuner.results import layout


@dataclass(frozen=True)
class Exploit:
    time: datetime
    trial_id: str
    source_trial_id: str
    step: int
    source_step: int
    old_config: dict[str, Any]
    new_config: dict[str, Any]


@dataclass(frozen=True)
class Segment:
    """From ``start_step`` on (until the next segment), training ran ``config`` in ``trial_id``."""

    start_step: int
    trial_id: str
    config: dict[str, Any]


def read_exploits(folder: Path) -> list[Exploit]:
    """Every decision, oldest first; empty for experiments without PBT."""
    import pyarrow.parquet as pq

    path = folder / layout.PBT_DECISIONS
    if not path.is_file():
        return []
    rows = pq.read_table(path).to_pylist()
    exploits = [
        Exploit(
            row["time"],
            row["trial_id"],
            row["source_trial_id"],
            int(row["step"]),
            int(row["source_step"]),
            json.loads(row["old_config_json"]),
            json.loads(row["new_config_json"]),
        )
        for row in rows
    ]
    return sorted(exploits, key=lambda e: e.time)


def schedule_of(trial_id: str, exploits: list[Exploit], finals: dict[str, dict[str, Any]]) -> list[Segment]:
    """The segments of configuration that produced ``trial_id``'s final model, oldest first.

    Args:
        trial_id: the trial whose history to trace (usually the best).
        exploits: every decision (:func:`read_exploits`).
        finals: each trial's final configuration (the trials table's ``config_json``).
    """
    return _history(trial_id, None, exploits, finals)


def _history(
    trial_id: str, before: datetime | None, exploits: list[Exploit], finals: dict[str, dict[str, Any]]
) -> list[Segment]:
    own = [e for e in exploits if e.trial_id == trial_id and (before is None or e.time < before)]
    if not own:
        mine = [e for e in exploits if e.trial_id == trial_id]
        initial = mine[0].old_config if mine else finals.get(trial_id, {})
        return [Segment(0, trial_id, initial)]
    last = own[-1]
    earlier = _history(last.source_trial_id, last.time, exploits, finals)
    kept = [segment for segment in earlier if segment.start_step < last.source_step] or earlier[:1]
    return [*kept, Segment(last.source_step, trial_id, last.new_config)]



def best_schedule(folder: Path, trial_id: str) -> list[Segment]:
    """The schedule ``trial_id`` followed, or [] for an experiment without PBT decisions."""
    import pyarrow.parquet as pq

    exploits = read_exploits(folder)
    if not exploits:
        return []
    table = pq.read_table(folder / layout.TRIALS, columns=["trial_id", "config_json"]).to_pylist()
    finals = {row["trial_id"]: json.loads(row["config_json"]) for row in table}
    return schedule_of(trial_id, exploits, finals)
