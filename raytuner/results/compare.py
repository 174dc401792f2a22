"""Comparing two or more experiments: best metric, trials by status, and what differs in
the best configurations and (for raytuner folders) in the resolved specs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from raytuner.results import layout
from raytuner.results.catalog import rank_trials
from raytuner.results.schema import flatten_config
from raytuner.results.tables import ExperimentTables

if TYPE_CHECKING:
    from raytuner.results.folder import Folder


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
    """A key whose values differ: one value per experiment, in the order compared."""

    key: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Comparison:
    sides: list[Side]
    config: list[Difference]
    spec: list[Difference]
    notes: list[str]

    @property
    def ranked(self) -> bool:
        """Whether every side optimises the same metric the same way, so best values compare."""
        return len({(side.metric, side.mode) for side in self.sides}) == 1

    def ranks(self) -> list[int | None]:
        """Each side's rank by best value (1 is best; ties share a rank, the next is skipped);
        None for a side without a value, and for every side when they cannot be ranked."""
        if not self.ranked:
            return [None] * len(self.sides)
        sign = -1.0 if (self.sides[0].mode or "min") == "max" else 1.0
        scores = [None if side.best_value is None else sign * side.best_value for side in self.sides]
        known = [score for score in scores if score is not None]
        return [None if score is None else 1 + sum(1 for other in known if other < score) for score in scores]

    @property
    def better(self) -> str | None:
        """Two sides: 'left', 'right', 'tie', or None when the two cannot be ranked."""
        if len(self.sides) != 2:
            return None
        ranks = self.ranks()
        if None in ranks:
            return None
        if ranks[0] == ranks[1]:
            return "tie"
        return "left" if ranks[0] == 1 else "right"


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


def compare_tables(opened: Sequence[ExperimentTables]) -> Comparison:
    """Compare opened experiments, two or more (their specs too, when every folder has one)."""
    sides = [side_of(tables) for tables in opened]
    comparison = Comparison(sides, [], [], [])
    if not comparison.ranked:
        objectives = " vs ".join(f"{side.metric} ({side.mode})" for side in sides)
        comparison.notes.append(f"different objectives: {objectives}; best values not ranked")
    comparison.config.extend(diff([flatten_config(side.best_config, "") for side in sides]))
    specs = [_spec(tables.folder) for tables in opened]
    if any(spec is None for spec in specs):
        comparison.notes.append("spec differences need raytuner folders only (a plain Ray Tune folder has no spec.yaml)")
    else:
        comparison.spec.extend(diff([_flat(spec) for spec in specs if spec is not None]))
    return comparison


def diff(flat: Sequence[Mapping[str, Any]]) -> list[Difference]:
    """Keys whose values differ between any two of ``flat``, in key order. Missing and null
    are the same (a spec that leaves a key out and one that sets it to null say the same), so
    a key absent or null everywhere is no difference; missing on one side and set on another is."""
    out = []
    for key in sorted(set().union(*flat)):
        values = tuple(side.get(key) for side in flat)
        if any(value != values[0] for value in values[1:]):
            out.append(Difference(key.lstrip("/"), values))
    return out


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flat(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _spec(location: Folder | None) -> dict[str, Any] | None:
    if location is None:
        return None
    try:
        if location.kind_of(layout.SPEC) != "file":
            return None
        loaded = yaml.safe_load(location.read_bytes(layout.SPEC))
    except Exception:  # noqa: BLE001 - a spec that cannot be read is just not compared
        return None
    if not isinstance(loaded, dict):
        return None
    loaded.pop("name", None)  # always differs between two runs; not a difference that matters
    return loaded
