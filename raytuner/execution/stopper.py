"""The spec's ``stop`` conditions as one Ray Tune ``Stopper``, plus stopping everything on abort.

It sees each report first (before the scheduler, the searcher and raytuner's books, on both
backends), so it is also where a report that cannot count for the spec's metric ends its
trial: a metric that is not a number, or missing from the trial's first report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ray.tune import Stopper

from raytuner.errors import Location, MetricNotReportedError
from raytuner.results.records import ExperimentBook, is_number, metrics_of
from raytuner.spec.models import StopSpec

SHOWN_CHARS = 60  # of a bad value, in the trial's error


class SpecStopper(Stopper):
    """Stops a trial at ``stop.iterations``, ``stop.time_s`` or a metric threshold, and a trial
    whose report cannot count for the spec's metric (see :func:`metric_fault`).

    A run in which no trial has reported the metric yet takes such a report as the spec's
    mistake (a typo in ``metric``): it aborts (``book.abort``; a fresh run leaves nothing).
    Once one has, it is that trial's mistake: the trial fails with the reason, kept in
    :attr:`faults` for the Bookkeeper, and the others go on.
    """

    def __init__(self, stop: StopSpec, book: ExperimentBook, source: str) -> None:
        self._stop = stop
        self._book = book
        self._source = source
        self._wanted = [name for name, _ in book.objectives] or [book.metric]
        # a resumed run's trials may have reported it already
        self._reported = any(all(name in record.last for name in self._wanted) for record in book.trials.values())
        self.stopped: set[str] = set()
        self.faults: dict[str, str] = {}  # trial id -> why its report could not count (until its end)

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
        for name, threshold in stop.metrics.items():
            value = result.get(name)
            if not is_number(value):
                continue
            if threshold.at_least is not None and value >= threshold.at_least:
                return True
            if threshold.at_most is not None and value <= threshold.at_most:
                return True
        return False

    def stop_all(self) -> bool:
        return self._book.abort is not None


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
