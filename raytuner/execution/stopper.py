"""The spec's ``stop`` conditions as one Ray Tune ``Stopper``, plus stopping everything on abort
or once more trials failed than ``failure.max_failed_trials`` allows.

It sees each report first (before the scheduler, the searcher and raytuner's books, on both
backends), so it is also where a report that cannot count for the spec's metric ends its
trial: a metric that is not a number, or missing from the trial's first report.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ray.tune import Stopper

from raytuner.errors import Location, MetricNotReportedError
from raytuner.results.records import ExperimentBook, is_number, metrics_of
from raytuner.spec.models import FailureSpec, StopSpec


@dataclass(frozen=True)
class FailureLimit:
    """``failure.max_failed_trials``: how many failed trials a run tolerates (Katib's
    ``maxFailedTrialCount``); a fraction counts of the experiment's planned trials."""

    setting: int | float | None
    total_trials: int
    key: str = "failure.max_failed_trials"

    @classmethod
    def of(cls, failure: FailureSpec, total_trials: int) -> FailureLimit:
        """The spec's limit; ``fail_fast`` is a limit of 0 (Ray's own fail_fast stops the trials,
        but its run returns as if it had ended: the limit is what says it failed)."""
        if failure.fail_fast:
            return cls(0, total_trials, "failure.fail_fast")
        return cls(failure.max_failed_trials, total_trials)

    @property
    def allowed(self) -> int | None:
        if self.setting is None or isinstance(self.setting, int):
            return self.setting
        return math.floor(self.setting * self.total_trials)

    def exceeded(self, failed: int) -> bool:
        allowed = self.allowed
        return allowed is not None and failed > allowed

    def reason(self, failed: int) -> str:
        """Why the run failed, for its status and the line the CLI prints."""
        of = "" if isinstance(self.setting, int) else f" ({self.setting:g} of {self.total_trials} trials)"
        return (
            f"{failed} trial{'s' if failed != 1 else ''} failed, more than {self.key} allows: "
            f"{self.allowed}{of}; the run was stopped"
        )

SHOWN_CHARS = 60  # of a bad value, in the trial's error


class SpecStopper(Stopper):
    """Stops a trial at ``stop.iterations``, ``stop.time_s`` or a metric threshold, a trial
    whose report cannot count for the spec's metric (see :func:`metric_fault`), and every
    trial on abort or past the failure limit.

    A run in which no trial has reported the metric yet takes such a report as the spec's
    mistake (a typo in ``metric``): it aborts (``book.abort``; a fresh run leaves nothing).
    Once one has, it is that trial's mistake: the trial fails with the reason, kept in
    :attr:`faults` for the Bookkeeper, and the others go on.

    Ray pickles its controller's stopper with the experiment state and a restored run takes it
    over the run config's; unpickled, a SpecStopper is the running one (the resumed run's, with
    its book), not the saved run's: that one's book would still count the failed trials that
    ``resume --retry-errored`` starts over.
    """

    def __init__(self, stop: StopSpec, book: ExperimentBook, source: str, limit: FailureLimit | None = None) -> None:
        self._stop = stop
        self._book = book
        self._source = source
        self.limit = limit or FailureLimit(None, 0)
        self._wanted = [name for name, _ in book.objectives] or [book.metric]
        # a resumed run's trials may have reported it already
        self._reported = book.reported()
        self.stopped: set[str] = set()
        self.faults: dict[str, str] = {}  # trial id -> why its report could not count (until its end)
        _LIVE[0] = weakref.ref(self)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return _live, (self._stop, self._source, self.limit)

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        record = self._book.trials.get(trial_id)
        fault = metric_fault(result, self._wanted, first=record is None or record.iterations == 0)
        if fault is not None:
            if self._reported:
                self.faults[trial_id] = fault
            elif self._book.abort is None:
                self._book.abort = MetricNotReportedError(f"trial {trial_id} {fault}", Location(self._source, None, "metric"))
            return True
        if not self._reported:
            metrics = metrics_of(result)
            self._reported = all(is_number(metrics.get(name)) for name in self._wanted)
        if self._reached(result):
            self.stopped.add(trial_id)
            return True
        return False

    def _reached(self, result: dict[str, Any]) -> bool:
        stop = self._stop
        if stop.iterations is not None and result.get("training_iteration", 0) >= stop.iterations:
            return True
        if stop.time_s is not None and result.get("time_total_s", 0.0) >= stop.time_s:
            return True
        metrics = metrics_of(result) if stop.metrics else {}  # "a/b" nested, numpy scalars as numbers
        for name, threshold in stop.metrics.items():
            value = metrics.get(name)
            if not is_number(value):
                continue
            if threshold.at_least is not None and value >= threshold.at_least:
                return True
            if threshold.at_most is not None and value <= threshold.at_most:
                return True
        return False

    def stop_all(self) -> bool:
        return self._book.abort is not None or self.limit.exceeded(self._book.failed)


def metric_fault(result: Mapping[str, Any], wanted: Sequence[str], *, first: bool) -> str | None:
    """Why a report cannot count for the spec's metrics ``wanted``, or None if it can.

    A metric present but not a number (text, a mapping, a list...) cannot count in any report;
    missing, only in a trial's first report (later ones may carry other things).
    """
    if all(is_number(result.get(name)) for name in wanted):
        return None  # the usual report, checked at no cost
    metrics = metrics_of(result)  # a metric named "a/b" may come nested: {"a": {"b": ...}}
    for name in wanted:
        inner = sorted(key for key in metrics if key.startswith(f"{name}/"))
        if inner:
            return f"reported {name} as a mapping ({', '.join(inner)}); the spec's metric '{name}' must be a number"
        if name in metrics and not is_number(metrics[name]):
            value = metrics[name]
            shown = repr(value) if len(repr(value)) <= SHOWN_CHARS else repr(value)[:SHOWN_CHARS] + "..."
            return f"reported {name} = {shown} ({type(value).__name__}); the spec's metric '{name}' must be a number"
    missing = [name for name in wanted if name not in metrics]
    if not (first and missing):
        return None
    shown = ", ".join(sorted(metrics)) or "no metrics"
    what = f"the spec's metric '{missing[0]}' is" if len(missing) == 1 else f"the spec's metrics {missing} are"
    return f"reported {shown}; {what} not among them"


_LIVE: list[weakref.ref[SpecStopper] | None] = [None]  # the stopper of the run in progress in this process


def _live(stop: StopSpec, source: str, limit: FailureLimit) -> SpecStopper:
    """The unpickled stopper: the running one, or (no run in this process) one with an empty book."""
    running = _LIVE[0]() if _LIVE[0] is not None else None
    return running or SpecStopper(stop, ExperimentBook("", 1.0), source, limit)
