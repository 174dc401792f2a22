"""Warm start: an earlier experiment's finished trials, told to a new searcher before it suggests.

The earlier experiment is read from its ``trials.parquet`` (by name under the storage root,
or by folder). A trial counts when it finished (``completed``, or ``stopped`` early by a
scheduler: the searcher of that run was told about it too) and has a finite value of the
metric: ``metric_last`` (what a searcher is told when a trial ends, the default) or
``metric_best``. With several metrics each one's ``last/<metric>`` column is read (a best per
metric would mix iterations, describing no model that existed, so ``value: best`` is refused).
Its configuration (``config_json``) must be one the new space can produce: every parameter
present, none unknown, each inside its range, so the searcher is never told about a point it
could not have suggested. The earlier run must have optimized the same metrics in the same
modes (several metrics may come in another order: they are read by name).

Every searcher that learns from results takes priors through ``add_evaluated(config, value)``
(one value per objective for the multi-objective ones; BOHB through ``add_evaluated_at``, with
the iterations the trial ran as its budget); random and grid search learn nothing and refuse a
warm start.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raytuner.space.assign import assign
from raytuner.space.model import Path as SpacePath
from raytuner.space.points import PointError, complete_point, describe
from raytuner.spec.models import WarmStartValue

if TYPE_CHECKING:
    from raytuner.space.model import Space
    from raytuner.spec.loader import Experiment
    from raytuner.spec.models import WarmStart

FINISHED = ("completed", "stopped")


class WarmStartError(ValueError):
    """The earlier experiment cannot warm-start this one; ``key`` is the warm_start key at fault."""

    def __init__(self, message: str, key: str = "experiment") -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Prior:
    """One finished earlier trial: its configuration, its value of each objective, and how far it ran."""

    trial_id: str
    config: dict[str, Any]
    values: tuple[float, ...]
    iterations: int

    @property
    def value(self) -> float:
        """The value of the (first) metric."""
        return self.values[0]


def load_priors(
    warm: WarmStart, space: Space, objectives: Sequence[tuple[str, str]], storage: str
) -> list[Prior]:
    """The finished trials of ``warm.experiment`` as priors for a searcher over ``space``.

    ``objectives`` are this experiment's (metric, mode) pairs, the primary one first; each
    prior holds one value per objective, in that order.

    Raises:
        WarmStartError: the experiment is missing or unreadable, optimized other metrics or
            modes, has no finished trial with a value, or holds a configuration this space
            cannot produce (the message names the parameter).
    """
    import numpy as np
    import pyarrow.parquet as pq

    from raytuner.errors import UsageError
    from raytuner.results import layout
    from raytuner.results.pareto import objectives_of
    from raytuner.results.reader import find_experiment

    several = len(objectives) > 1
    if several and warm.value is WarmStartValue.BEST:
        raise WarmStartError(
            f"value: best takes one metric, this experiment optimizes {len(objectives)} "
            f"({', '.join(name for name, _ in objectives)}): the best of each comes from a different iteration; "
            "use value: last",
            key="value",
        )
    try:
        folder = find_experiment(warm.experiment, storage)
    except UsageError as exc:
        raise WarmStartError(str(exc)) from exc
    path = Path(folder) / layout.TRIALS
    if not path.is_file():
        raise WarmStartError(f"{folder}: no {layout.TRIALS}, so no earlier trials to learn from")
    try:
        table = pq.read_table(path)
    except OSError as exc:
        raise WarmStartError(f"{path}: cannot read it: {exc}") from exc
    meta = table.schema.metadata or {}
    theirs = objectives_of(meta) or [
        (meta.get(b"raytuner.metric", b"").decode() or "?", meta.get(b"raytuner.mode", b"").decode() or "?")
    ]
    if sorted(theirs) != sorted(objectives):
        raise WarmStartError(
            f"{folder.name} optimized {_show(theirs)}, this experiment {_show(objectives)}; "
            f"a warm start needs the same {'metrics and modes' if several or len(theirs) > 1 else 'metric and mode'}"
        )
    if several:
        columns = [f"last/{name}" for name, _ in objectives]
    else:
        columns = ["metric_best" if warm.value is WarmStartValue.BEST else "metric_last"]
    missing = [name for name in columns if name not in table.column_names]
    if missing:  # a metric no trial ever reported
        raise WarmStartError(f"{folder.name} has no finished trial with a value of {', '.join(missing)}; nothing to learn from")
    rng = np.random.default_rng(0)
    priors = []
    for row in table.select(["trial_id", "status", "iterations", "config_json", *columns]).to_pylist():
        values = [row[name] for name in columns]
        if row["status"] not in FINISHED or not all(_finite(value) for value in values):
            continue
        config = json.loads(row["config_json"])
        _check_config(space, config, f"{folder.name} trial {row['trial_id']}", rng)
        priors.append(
            Prior(str(row["trial_id"]), config, tuple(float(v) for v in values), int(row["iterations"] or 0))
        )
    if not priors:
        raise WarmStartError(
            f"{folder.name} has no finished trial with a value of {' and '.join(name for name, _ in objectives)} "
            f"({', '.join(columns)}); nothing to learn from"
        )
    return priors


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _show(objectives: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"{name} ({mode})" for name, mode in objectives)


def _check_config(space: Space, config: dict[str, Any], where: str, rng: Any) -> None:
    try:
        complete_point(space, config, rng)  # unknown keys, values outside the space
    except PointError as exc:
        raise WarmStartError(
            f"{where}: {_name(exc.path)}: {exc}; a warm start needs configurations this space can produce"
        ) from exc
    try:
        assign(space, config, lambda node, value, at: value)  # parameters the earlier run did not have
    except ValueError as exc:
        raise WarmStartError(
            f"{where}: {exc} (this space has parameters the earlier experiment did not); "
            "a warm start needs configurations this space can produce"
        ) from exc


def _name(path: SpacePath) -> str:
    return f"parameter {describe(path)}" if path else describe(path)


def priors_for(experiment: Experiment) -> list[Prior]:
    """The spec's warm-start priors, or none without ``search.warm_start``."""
    spec = experiment.spec
    warm = spec.search.warm_start
    if warm is None:
        return []
    objectives = [(o.metric, o.mode.value) for o in spec.objectives]
    return load_priors(warm, experiment.space, objectives, spec.storage)


def warm(searcher: Any, experiment: Experiment) -> int:
    """Tells ``searcher`` every prior of the spec's warm start; returns how many it was told."""
    at_budget = getattr(searcher, "add_evaluated_at", None)  # BOHB keeps results per budget
    priors = priors_for(experiment)
    for prior in priors:
        if len(prior.values) > 1:  # only multi-objective searchers get here (checks refuse the others)
            searcher.add_evaluated(prior.config, list(prior.values))
        elif at_budget is not None:
            at_budget(prior.config, prior.value, prior.iterations)
        else:
            searcher.add_evaluated(prior.config, prior.value)
    return len(priors)
