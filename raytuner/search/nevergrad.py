"""Nevergrad's differential evolution as a Ray Tune ``Searcher`` (any Nevergrad optimizer by name).

Each Ray trial is one Nevergrad candidate: ``suggest`` asks the optimizer and reads the
configuration off the candidate (:mod:`raytuner.space.nevergrad`, conditional branches
included); ``on_trial_complete`` tells it the metric (negated for ``mode: max``: Nevergrad
minimizes). A failed trial, or one without a finite metric, is not told: like the other
searchers, it teaches the optimizer nothing (Nevergrad tolerates asked candidates that never
come back). Points to evaluate and earlier results (warm start) are candidates written from
the configuration and told as "not asked", which Nevergrad's optimizers take in as any other.

Seeds: the parametrization's random state is seeded, which drives every draw the optimizers make.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
from ray.tune.search import Searcher  # noqa: TID253 - imported only by the registry's factory

from raytuner.search.state import PickledState
from raytuner.search.values import finite_number
from raytuner.space.nevergrad import set_config, to_config, to_nevergrad
from raytuner.space.points import complete_point
from raytuner.spec.models import Algorithm

if TYPE_CHECKING:
    from raytuner.space.model import Space
    from raytuner.spec.loader import Experiment

# The Nevergrad optimizer each algorithm builds. Only optimizers that take several asks before
# a tell belong here: NGOpt does not (with one worker it may pick a sequential optimizer whose
# ask waits for the previous tell, which hangs a run with parallel trials; with several, a
# metamodel that fails under NumPy 2 in nevergrad 1.0.12), so it is measured, not offered.
OPTIMIZERS: dict[Algorithm, str] = {Algorithm.NEVERGRAD_DE: "DE"}


def build_optimizer(name: str, parametrization: Any, *, budget: int, num_workers: int = 1, popsize: int | None = None) -> Any:
    """Nevergrad's optimizer ``name`` over ``parametrization`` (shared with the benchmark's direct calls)."""
    import nevergrad as ng

    if name == "DE":
        family = ng.families.DifferentialEvolution(popsize=popsize if popsize is not None else "standard")
        return family(parametrization=parametrization, budget=budget, num_workers=num_workers)
    return ng.optimizers.registry[name](parametrization=parametrization, budget=budget, num_workers=num_workers)


class NevergradSearcher(PickledState, Searcher):
    """A Nevergrad optimizer over a (possibly conditional) space, one candidate per Ray trial."""

    def __init__(
        self,
        space: Space,
        metric: str,
        mode: str,
        optimizer: str,
        *,
        budget: int,
        num_workers: int = 1,
        popsize: int | None = None,
        points: list[dict[str, Any]] | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(metric=metric, mode=mode)
        self._space = space
        self._parametrization = to_nevergrad(space)
        if seed is not None:
            self._parametrization.random_state.seed(seed)
        self._optimizer = build_optimizer(
            optimizer, self._parametrization, budget=budget, num_workers=num_workers, popsize=popsize
        )
        self._rng = np.random.default_rng(seed)
        self._points = list(points or [])
        self._live: dict[str, Any] = {}
        self._sign = -1.0 if mode == "max" else 1.0

    @classmethod
    def for_experiment(cls, experiment: Experiment) -> NevergradSearcher:
        spec = experiment.spec
        search = spec.search
        return cls(
            experiment.space,
            spec.metric,
            spec.mode.value,
            OPTIMIZERS[search.algorithm],
            budget=max(search.num_samples, len(search.points_to_evaluate)),
            num_workers=search.max_concurrent or 1,
            popsize=getattr(search, "popsize", None),
            points=search.points_to_evaluate,
            seed=search.seed,
        )

    @property
    def optimizer(self) -> Any:
        return self._optimizer

    def _candidate(self, config: dict[str, Any]) -> Any:
        candidate = self._parametrization.spawn_child()
        set_config(self._space, candidate, config)
        return candidate

    def add_evaluated(self, config: dict[str, Any], value: float) -> None:
        """Tell the optimizer about a configuration evaluated elsewhere (an earlier experiment)."""
        with _quiet():
            self._optimizer.tell(self._candidate(config), self._sign * float(value))

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self._points:
            config = complete_point(self._space, self._points.pop(0), self._rng)
            self._live[trial_id] = self._candidate(config)
            return config
        with _quiet():
            candidate = self._optimizer.ask()
        self._live[trial_id] = candidate
        return to_config(self._space, candidate)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        candidate = self._live.pop(trial_id, None)
        if candidate is None:
            return
        value = None if result is None or self._metric is None else result.get(self._metric)
        if error or not finite_number(value):
            return
        with _quiet():
            self._optimizer.tell(candidate, self._sign * float(value))

    def get_state(self) -> dict[str, Any]:
        return {
            "optimizer": self._optimizer,
            "rng": self._rng.bit_generator.state,
            "points": self._points,
            "live": self._live,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self._optimizer = state["optimizer"]
        self._parametrization = self._optimizer.parametrization
        self._rng.bit_generator.state = state["rng"]
        self._points = state["points"]
        self._live = state["live"]


@contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        # NGOpt's COBYLA (through pdfo) warns that it adjusted its own stopping radius: nothing to act on
        warnings.filterwarnings("ignore", message=".*RHOEND")
        yield
