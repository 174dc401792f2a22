"""Trial schedulers, a registry keyed by :class:`~raytuner.spec.models.SchedulerType`.

Factories import Ray inside; the spec's metric and mode are passed to every scheduler.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from raytuner.spec.models import (
    AshaScheduler,
    FifoScheduler,
    HyperbandScheduler,
    MedianScheduler,
    SchedulerType,
)


def _fifo(options: FifoScheduler, metric: str, mode: str) -> Any:
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


def _asha(options: AshaScheduler, metric: str, mode: str) -> Any:
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr=options.time_attr,
        metric=metric,
        mode=mode,
        max_t=options.max_t,
        grace_period=options.grace_period,
        reduction_factor=options.reduction_factor,
        brackets=options.brackets,
    )


def _hyperband(options: HyperbandScheduler, metric: str, mode: str) -> Any:
    from ray.tune.schedulers import HyperBandScheduler

    return HyperBandScheduler(
        time_attr=options.time_attr,
        metric=metric,
        mode=mode,
        max_t=options.max_t,
        reduction_factor=options.reduction_factor,
    )


def _median(options: MedianScheduler, metric: str, mode: str) -> Any:
    from ray.tune.schedulers import MedianStoppingRule

    return MedianStoppingRule(
        time_attr=options.time_attr,
        metric=metric,
        mode=mode,
        grace_period=options.grace_period,
        min_samples_required=options.min_samples_required,
        min_time_slice=float("inf") if options.min_time_slice is None else options.min_time_slice,
        hard_stop=options.hard_stop,
    )


SCHEDULERS: dict[SchedulerType, Callable[[Any, str, str], Any]] = {
    SchedulerType.FIFO: _fifo,
    SchedulerType.ASHA: _asha,
    SchedulerType.HYPERBAND: _hyperband,
    SchedulerType.MEDIAN: _median,
}


def create_scheduler(options: Any, metric: str, mode: str) -> Any:
    """The Ray Tune scheduler for the spec's ``scheduler`` section."""
    return SCHEDULERS[options.type](options, metric, mode)
