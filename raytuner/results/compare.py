"""Comparing two experiments: best metric, trials by status, and what differs in the
best configurations and (for raytuner folders) in the resolved specs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from raytuner.results import layout
from raytuner.results.catalog import rank_trials
from raytuner.results.reader import ExperimentTables, location_of
from raytuner.results.schema import flatten_config


@dataclass(frozen=True)
class Side:
    """One experiment as the comparison sees it."""

    name: str
    source: str
    metric: str | None
    mode: str | None
    trials: dict[str, int]
    best_value: float | None
    best_trial: str | None
    best_config: dict[str, Any]


@dataclass(frozen=True)
class Difference:
    key: str
    left: Any
    right: Any


@dataclass(frozen=True)
class Comparison:
    left: Side
    right: Side
    config: list[Difference]
    spec: list[Difference]
    notes: list[str]

    @property
    def better(self) -> str | None:
        """'left', 'right', 'tie', or None when the two cannot be ranked."""
        a, b = self.left, self.right
        if a.best_value is None or b.best_value is None or a.metric != b.metric or a.mode != b.mode:
            return None
        if a.best_value == b.best_value:
            return "tie"
        lower_wins = (a.mode or "min") == "min"
        return "left" if (a.best_value < b.best_value) == lower_wins else "right"


def side_of(tables: ExperimentTables) -> Side:
    """Best trial and counts of one experiment's trials table."""
    rows = tables.trials.select(["status"]).to_pylist()
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    ranked = rank_trials(tables.trials, tables.mode or "min")
    best = ranked[0] if ranked else None
    return Side(
        name=tables.name,
        source=tables.source,
        metric=tables.metric,
        mode=tables.mode,
        trials=counts,
        best_value=None if best is None else best.value,
        best_trial=None if best is None else best.trial_id,
        best_config={} if best is None else best.config,
    )


def compare_tables(left: ExperimentTables, right: ExperimentTables, storage: str = "runs") -> Comparison:
    """Compare two opened experiments (their specs too, when both folders have one)."""
    a, b = side_of(left), side_of(right)
    notes = []
    if a.metric != b.metric or a.mode != b.mode:
        notes.append(f"different objectives: {a.metric} ({a.mode}) vs {b.metric} ({b.mode}); best values not ranked")
    config = diff(flatten_config(a.best_config, ""), flatten_config(b.best_config, ""))
    spec_a, spec_b = _spec(left.source, storage), _spec(right.source, storage)
    spec = [] if spec_a is None or spec_b is None else diff(_flat(spec_a), _flat(spec_b))
    if spec_a is None or spec_b is None:
        notes.append("spec differences need two raytuner folders (a plain Ray Tune folder has no spec.yaml)")
    return Comparison(a, b, config, spec, notes)


def diff(left: Mapping[str, Any], right: Mapping[str, Any]) -> list[Difference]:
    """Keys whose values differ, in key order. Missing and null are the same (a spec that
    leaves a key out and one that sets it to null say the same), so a key absent or null on
    both sides is no difference; missing on one side and set on the other is."""
    out = []
    for key in sorted(set(left) | set(right)):
        a, b = left.get(key), right.get(key)
        if a != b:
            out.append(Difference(key.lstrip("/"), a, b))
    return out


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flat(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _spec(source: str, storage: str) -> dict[str, Any] | None:
    try:
        location = location_of(source, storage)
        if location.kind_of(layout.SPEC) != "file":
            return None
        loaded = yaml.safe_load(location.read_bytes(layout.SPEC))
    except Exception:  # noqa: BLE001 - a spec that cannot be read is just not compared
        return None
    if not isinstance(loaded, dict):
        return None
    loaded.pop("name", None)  # always differs between two runs; not a difference that matters
    return loaded
