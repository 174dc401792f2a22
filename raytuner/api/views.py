"""What :class:`~raytuner.api.Experiment`'s reading methods return: plain frozen values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from raytuner.results.checkpoints import CheckpointInfo
    from raytuner.results.lineage import Segment


@dataclass(frozen=True)
class Trial:
    """One trial as :meth:`Experiment.best` and :meth:`Experiment.front` rank them.

    Attributes:
        trial_id: Ray Tune's trial id.
        status: ``completed``, ``stopped`` (early stopping), ``running``...
        config: the configuration the trial ran with, as a nested dict ready to reuse
            (``points_to_evaluate``, a constant space, the trainable itself).
        values: the metric values it is ranked by: its best value of the metric
            (:meth:`~Experiment.best`), or its last value of each objective (:meth:`~Experiment.front`).
        iteration: the iteration of that best value; for the front, the trial's iterations.
    """

    trial_id: str
    status: str
    config: dict[str, Any]
    values: dict[str, float]
    iteration: int | None


@dataclass(frozen=True)
class Ranking:
    """The best trials, as ``raytuner best`` shows them (:meth:`Experiment.ranking`).

    Attributes:
        name: the experiment's name.
        objectives: ``(metric, mode)`` of the metric the trials are ranked by; of every
            objective when the experiment has several (then ``trials`` is the Pareto front).
        trials: best first; a Pareto front sorted by its first objective.
        front_size: several metrics: how many trials the front holds (``trials`` may be cut
            shorter); None for a single metric.
        completed: several metrics: the completed trials the front was taken from.
        schedules: PBT: the configurations each ranked trial's final model was trained with,
            oldest first, by trial id; empty without PBT decisions.
        checkpoints: each ranked trial's best kept checkpoint (where it is, its iteration and
            score), by trial id; trials that kept none, and plain Ray Tune folders, have none.
    """

    name: str
    objectives: list[tuple[str, str]]
    trials: list[Trial]
    front_size: int | None = None
    completed: int | None = None
    schedules: dict[str, list[Segment]] = field(default_factory=dict)
    checkpoints: dict[str, CheckpointInfo] = field(default_factory=dict)

    @property
    def is_front(self) -> bool:
        """Whether ``trials`` is a Pareto front (several metrics)."""
        return self.front_size is not None


@dataclass(frozen=True)
class TrialView:
    """Selected rows of the trials table, as ``raytuner show`` prints them (:meth:`Experiment.select`).

    Attributes:
        name: the experiment's name.
        rows: the selected trials (filtered, sorted, cut), in the selected columns.
        total: how many trials the experiment has.
        metric: the metric; mode: ``min`` or ``max``.
        objectives: ``(metric, mode)`` of every objective when there are several; else empty.
        front_size: several metrics: how many trials are on the Pareto front.
        best_trial_id: a single metric: the trial with the best ``metric_best``.
        decisions: PBT: how many exploit/explore decisions were taken (0 without PBT).
        schedule: PBT: the schedule the best trial followed (see :attr:`Ranking.schedules`).
    """

    name: str
    rows: pa.Table
    total: int
    metric: str | None
    mode: str | None
    objectives: list[tuple[str, str]]
    front_size: int | None
    best_trial_id: str | None
    decisions: int = 0
    schedule: list[Segment] = field(default_factory=list)
