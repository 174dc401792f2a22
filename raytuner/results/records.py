"""What raytuner knows about an experiment while it runs: one record per trial.

This is the source of truth for progress, the Parquet tables and the summary. Ray's
``ResultGrid`` is not used for metrics: with per-trial logger files off it cannot read them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TypeGuard


class TrialStatus(str, Enum):
    """A trial's state. ``stopped`` means stopped early by the scheduler."""

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    STOPPED = "stopped"
    ERROR = "error"

    @property
    def finished(self) -> bool:
        return self in (TrialStatus.COMPLETED, TrialStatus.STOPPED, TrialStatus.ERROR)


# Keys Ray adds to every result; they are columns of their own or not worth keeping.
RAY_RESULT_KEYS = frozenset(
    {
        "config",
        "trial_id",
        "experiment_id",
        "date",
        "timestamp",
        "time_this_iter_s",
        "time_total_s",
        "pid",
        "hostname",
        "node_ip",
        "time_since_restore",
        "iterations_since_restore",
        "timesteps_since_restore",
        "training_iteration",
        "done",
        "experiment_tag",
        "checkpoint_dir_name",
        "should_checkpoint",
        "timesteps_total",
        "episodes_total",
        "warmup_time",
    }
)


def metrics_of(result: Mapping[str, Any]) -> dict[str, Any]:
    """The user's metrics in a Ray result, nested dicts flattened with '/'."""
    flat: dict[str, Any] = {}
    for key, value in result.items():
        if key in RAY_RESULT_KEYS or key.startswith("__"):
            continue
        _flatten(str(key), value, flat)
    return flat


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _flatten(f"{prefix}/{key}", inner, out)
    else:
        out[prefix] = value


def is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(slots=True)
class TrialRecord:
    """Everything recorded about one trial."""

    trial_id: str
    config: dict[str, Any]
    status: TrialStatus = TrialStatus.PENDING
    started_at: float | None = None
    ended_at: float | None = None
    iterations: int = 0
    time_total_s: float = 0.0
    last: dict[str, Any] = field(default_factory=dict)
    best: float | None = None
    best_iteration: int | None = None
    error: str | None = None
    num_failures: int = 0
    node_ip: str | None = None
    trial_dir: str | None = None
    resources: dict[str, float] = field(default_factory=dict)
    gpu_ids: str | None = None  # the GPUs the trial used, as CUDA_VISIBLE_DEVICES names them ("0", "0,1")
    early_stopped: bool = False

    def observe(self, metric: str, sign: float, metrics: Mapping[str, Any], iteration: int) -> bool:
        """Take one report into account; True if it improved this trial's best."""
        self.last.update(metrics)
        value = metrics.get(metric)
        if not is_number(value) or math.isnan(value):
            return False
        if self.best is None or sign * value > sign * self.best:
            self.best = float(value)
            self.best_iteration = iteration
            return True
        return False


@dataclass
class Best:
    trial_id: str
    value: float
    iteration: int
    config: dict[str, Any]


@dataclass
class ExperimentBook:
    """All trial records of one run, and the best so far (of ``metric``, the primary objective)."""

    metric: str
    sign: float
    trials: dict[str, TrialRecord] = field(default_factory=dict)
    best: Best | None = None
    reports: int = 0
    pending: int = 0
    abort: Exception | None = None
    # (metric, mode) of every objective when the spec has several metrics; empty otherwise
    objectives: tuple[tuple[str, str], ...] = ()

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    def front(self) -> list[TrialRecord]:
        """The completed trials on the Pareto front (see :mod:`raytuner.results.pareto`), best first by the first objective."""
        from raytuner.results.pareto import front_of_rows

        records = list(self.trials.values())
        rows = [{"status": r.status.value, **{f"last/{m}": r.last.get(m) for m, _ in self.objectives}} for r in records]
        flags = front_of_rows(rows, self.objectives)
        chosen = [r for r, on in zip(records, flags, strict=True) if on]
        first, mode = self.objectives[0]
        return sorted(chosen, key=lambda r: (-1.0 if mode == "max" else 1.0) * float(r.last[first]))

    def counts(self) -> dict[TrialStatus, int]:
        out = dict.fromkeys(TrialStatus, 0)
        for record in self.trials.values():
            out[record.status] += 1
        return out

    def consider(self, record: TrialRecord) -> bool:
        """Update the overall best from ``record``; True if it is the new best."""
        if record.best is None:
            return False
        if self.best is None or self.sign * record.best > self.sign * self.best.value:
            self.best = Best(record.trial_id, record.best, record.best_iteration or 0, record.config)
            return True
        return False
