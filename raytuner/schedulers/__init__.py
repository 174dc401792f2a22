"""Trial schedulers, a registry keyed by :class:`~raytuner.spec.models.SchedulerType`.

Factories import Ray inside; the spec's metric and mode are passed to every scheduler.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from raytuner.errors import Location, SpecError
from raytuner.space.model import Path, Space, parse_space
from raytuner.spec.models import (
    AshaScheduler,
    FifoScheduler,
    HyperbandScheduler,
    MedianScheduler,
    Pb2Scheduler,
    PbtScheduler,
    SchedulerType,
)

MUTATIONS_PATH: Path = ("scheduler", "hyperparam_mutations")


def parse_mutations(raw: dict[str, Any], locate: Callable[[Path], Location] | None = None) -> Space:
    """PBT's ``hyperparam_mutations`` as a space: a plain list means "one of these values"."""

    def lists_to_choices(value: Any) -> Any:
        if isinstance(value, list):
            return {"choice": value}
        if isinstance(value, dict) and not (len(value) == 1 and _is_operator(value)):
            return {key: lists_to_choices(inner) for key, inner in value.items()}
        return value

    where = locate or (lambda path: Location(path=".".join(str(p) for p in path)))
    return parse_space(lists_to_choices(raw), where, MUTATIONS_PATH)


def _is_operator(value: dict[str, Any]) -> bool:
    from raytuner.space.model import Op

    return next(iter(value)) in {op.value for op in Op}


def _fifo(options: FifoScheduler, metric: str, mode: str) -> Any:
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


def _asha(options: AshaScheduler, metric: str, mode: str) -> Any:
    from raytuner.schedulers.stops import NotingASHA

    return NotingASHA(
        time_attr=options.time_attr,
        metric=metric,
        mode=mode,
        max_t=options.max_t,
        grace_period=options.grace_period,
        reduction_factor=options.reduction_factor,
        brackets=options.brackets,
    )


def _hyperband(options: HyperbandScheduler, metric: str, mode: str) -> Any:
    from raytuner.schedulers.stops import NotingHyperBand

    return NotingHyperBand(
        time_attr=options.time_attr,
        metric=metric,
        mode=mode,
        max_t=options.max_t,
        reduction_factor=options.reduction_factor,
    )


def _median(options: MedianScheduler, metric: str, mode: str) -> Any:
    from raytuner.schedulers.stops import NotingMedian

    return NotingMedian(
        time_attr=options.time_attr,
        metric=metric,
        mode=mode,
        grace_period=options.grace_period,
        min_samples_required=options.min_samples_required,
        min_time_slice=float("inf") if options.min_time_slice is None else options.min_time_slice,
        hard_stop=options.hard_stop,
    )


def _pbt(options: PbtScheduler, metric: str, mode: str) -> Any:
    from raytuner.schedulers.pbt import RecordingPBT
    from raytuner.space.ray_domains import to_ray

    mutations = to_ray(parse_mutations(options.hyperparam_mutations).root)
    return RecordingPBT(
        time_attr=options.time_attr,
        metric=metric,
        mode=mode,
        perturbation_interval=options.perturbation_interval,
        burn_in_period=options.burn_in_period,
        hyperparam_mutations=mutations,
        quantile_fraction=options.quantile_fraction,
        resample_probability=options.resample_probability,
        perturbation_factors=options.perturbation_factors,
        synch=options.synch,
    )


def _pb2(options: Pb2Scheduler, metric: str, mode: str) -> Any:
    from raytuner.schedulers.pbt import recording_pb2

    return recording_pb2(
        time_attr=options.time_attr,
        metric=metric,
        mode=mode,
        perturbation_interval=options.perturbation_interval,
        hyperparam_bounds={name: list(bounds) for name, bounds in options.hyperparam_bounds.items()},
        quantile_fraction=options.quantile_fraction,
        synch=options.synch,
    )


def pb2_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("sklearn") is not None


def check_pb2(where: Location) -> None:
    if not pb2_available():
        raise SpecError("pb2 needs scikit-learn: pip install 'raytuner[pb2]'", where)


SCHEDULERS: dict[SchedulerType, Callable[[Any, str, str], Any]] = {
    SchedulerType.FIFO: _fifo,
    SchedulerType.ASHA: _asha,
    SchedulerType.HYPERBAND: _hyperband,
    SchedulerType.MEDIAN: _median,
    SchedulerType.PBT: _pbt,
    SchedulerType.PB2: _pb2,
}


def create_scheduler(options: Any, metric: str, mode: str) -> Any:
    """The Ray Tune scheduler for the spec's ``scheduler`` section."""
    return SCHEDULERS[options.type](options, metric, mode)
