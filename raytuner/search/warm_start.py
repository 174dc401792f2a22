"""Warm start: an earlier experiment's finished trials, told to a new searcher before it suggests.

The earlier experiment is read from its ``trials.parquet`` (by name under the storage root,
or by folder). A trial counts when it finished (``completed``, or ``stopped`` early by a
scheduler: the searcher of that run was told about it too) and has a finite value of the
metric: ``metric_last`` (what a searcher is told when a trial ends, the default) or
``metric_best``. Its configuration (``config_json``) must be one the new space can produce:
every parameter present, none unknown, each inside its range, so the searcher is never told
about a point it could not have suggested. The earlier run must have optimized the same
metric in the same mode.

Every searcher that learns from results takes priors through ``add_evaluated(config, value)``
(BOHB through ``add_evaluated_at``, with the iterations the trial ran as its budget); random and
grid search learn nothing and refuse a warm start.
"""

from __future__ import annotations

import json
import math
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
    """One finished earlier trial: its configuration, its value, and how far it ran."""

    trial_id: str
    config: dict[str, Any]
    value: float
    iterations: int


def load_priors(warm: WarmStart, space: Space, metric: str, mode: str, storage: str) -> list[Prior]:
    """The finished trials of ``warm.experiment`` as priors for a searcher over ``space``.

    Raises:
        WarmStartError: the experiment is missing or unreadable, optimized another metric or
            mode, has no finished trial with a value, or holds a configuration this space
            cannot produce (the message names the parameter).
    """
    import numpy as np
    import pyarrow.parquet as pq

    from raytuner.errors import UsageError
    from raytuner.results import layout

    try:
        folder = layout.find_experiment(warm.experiment, storage)
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
    their_metric = meta.get(b"raytuner.metric", b"").decode()
    their_mode = meta.get(b"raytuner.mode", b"").decode()
    if (their_metric, their_mode) != (metric, mode):
        raise WarmStartError(
            f"{folder.name} optimized {their_metric or '?'} ({their_mode or '?'}), this experiment {metric} ({mode}); "
            "a warm start needs the same metric and mode"
        )
    column = "metric_best" if warm.value is WarmStartValue.BEST else "metric_last"
    rng = np.random.default_rng(0)
    priors = []
    for row in table.select(["trial_id", "status", "iterations", "config_json", column]).to_pylist():
        value = row[column]
        if row["status"] not in FINISHED or not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        config = json.loads(row["config_json"])
        _check_config(space, config, f"{folder.name} trial {row['trial_id']}", rng)
        priors.append(Prior(str(row["trial_id"]), config, float(value), int(row["iterations"] or 0)))
    if not priors:
        raise WarmStartError(
            f"{folder.name} has no finished trial with a value of {metric} ({column}); nothing to learn from"
        )
    return priors


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
    return load_priors(warm, experiment.space, spec.metric, spec.mode.value, spec.storage)


def warm(searcher: Any, experiment: Experiment) -> Any:
    """``searcher`` told about every prior of the spec's warm start (unchanged without one)."""
    at_budget = getattr(searcher, "add_evaluated_at", None)  # BOHB keeps results per budget
    for prior in priors_for(experiment):
        if at_budget is not None:
            at_budget(prior.config, prior.value, prior.iterations)
        else:
            searcher.add_evaluated(prior.config, prior.value)
    return searcher
