"""BOHB (Falkner, Klein and Hutter, 2018): a TPE model over budgets, run with HyperBand.

Our own implementation, not HpBandSter's (see docs/search-benchmark.md for why): the searcher
records each trial's metric at every budget it reaches (the scheduler's ``time_attr``, by
default ``training_iteration``), and each suggestion is, as in the paper,

- with probability ``random_fraction`` (1/3) a configuration drawn at random from the space;
- otherwise the best of ``n_ei_candidates`` by a TPE model (the ratio of a density fitted
  to the best results to one fitted to the rest) fitted on the results of the **largest
  budget that has at least** ``min_points_in_model + 2`` **of them** (``min_points_in_model``
  defaults to the number of parameters + 1); with no such budget yet, a random draw.

The TPE model is Optuna's ``TPESampler`` (multivariate, one group per conditional branch)
given that budget's results as completed trials, so conditional spaces work as for
``optuna_tpe``. The successive-halving brackets that decide which trials reach the larger
budgets are Ray Tune's HyperBand (``scheduler: hyperband``, which the spec check requires).
Failed trials, and results without a finite metric, are not recorded.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna  # noqa: TID253 - imported only by the registry's factory
from ray.tune.search import Searcher  # noqa: TID253 - imported only by the registry's factory

from raytuner.search.state import PickledState
from raytuner.search.values import finite_number
from raytuner.space.model import Choice, Float, Integer, Normal, walk
from raytuner.space.optuna import conditional_paths, suggest, to_params
from raytuner.space.points import complete_point
from raytuner.space.sample import sample
from raytuner.spec.models import BohbSearch

if TYPE_CHECKING:
    from raytuner.space.model import Space
    from raytuner.spec.loader import Experiment


def parameter_count(space: Space) -> int:
    """The dimensions a model of ``space`` has: its distributions and its choices."""
    return sum(isinstance(node, (Float, Integer, Normal, Choice)) for _, node in walk(space.root))


class BohbSearcher(PickledState, Searcher):
    """BOHB's model-based sampling over a (possibly conditional) space; pair it with HyperBand."""

    def __init__(
        self,
        space: Space,
        metric: str,
        mode: str,
        *,
        time_attr: str = "training_iteration",
        min_points_in_model: int | None = None,
        random_fraction: float = 1 / 3,
        n_ei_candidates: int = 24,
        points: list[dict[str, Any]] | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(metric=metric, mode=mode)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._space = space
        self._time_attr = time_attr
        self._min_points = min_points_in_model if min_points_in_model is not None else parameter_count(space) + 1
        self._random_fraction = random_fraction
        self._n_ei_candidates = n_ei_candidates
        self._group = bool(conditional_paths(space))
        self._rng = np.random.default_rng(seed)
        self._points = list(points or [])
        self._live: dict[str, dict[str, Any]] = {}  # trial id -> its configuration
        # budget -> trial id -> value (to minimize); configurations by trial id
        self._results: dict[float, dict[str, float]] = {}
        self._configs: dict[str, dict[str, Any]] = {}
        self._sign = -1.0 if mode == "max" else 1.0
        self._priors = 0

    @classmethod
    def for_experiment(cls, experiment: Experiment) -> BohbSearcher:
        spec = experiment.spec
        search = spec.search
        if not isinstance(search, BohbSearch):
            raise TypeError(f"expected a bohb search, found {search.algorithm.value}")
        return cls(
            experiment.space,
            spec.metric,
            spec.mode.value,
            time_attr=getattr(spec.scheduler, "time_attr", "training_iteration"),
            min_points_in_model=search.min_points_in_model,
            random_fraction=search.random_fraction,
            n_ei_candidates=search.n_ei_candidates,
            points=search.points_to_evaluate,
            seed=search.seed,
        )

    @property
    def results(self) -> dict[float, dict[str, float]]:
        """Budget -> trial id -> recorded value (negated for ``mode: max``)."""
        return self._results

    def model_budget(self) -> float | None:
        """The budget whose results the next model-based suggestion is fitted on, if any has enough."""
        enough = [budget for budget, values in self._results.items() if len(values) >= self._min_points + 2]
        return max(enough) if enough else None

    def add_evaluated_at(self, config: dict[str, Any], value: float, budget: float) -> None:
        """Record a configuration evaluated elsewhere (an earlier experiment) at ``budget``."""
        key = f"prior-{self._priors}"
        self._priors += 1
        self._configs[key] = config
        self._results.setdefault(float(budget), {})[key] = self._sign * float(value)

    def add_evaluated(self, config: dict[str, Any], value: float) -> None:
        self.add_evaluated_at(config, value, math.inf)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self._points:
            config = complete_point(self._space, self._points.pop(0), self._rng)
        else:
            budget = self.model_budget()
            if budget is None or self._rng.random() < self._random_fraction:
                config = dict(sample(self._space.root, self._rng))
            else:
                config = self._from_model(budget)
        self._live[trial_id] = config
        self._configs[trial_id] = config
        return config

    def _from_model(self, budget: float) -> dict[str, Any]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(
                seed=int(self._rng.integers(2**31 - 1)),
                n_startup_trials=0,
                n_ei_candidates=self._n_ei_candidates,
                multivariate=True,
                group=self._group,
            )
        study = optuna.create_study(sampler=sampler, direction="minimize")
        trials = []
        for trial_id, value in self._results[budget].items():
            fixed = optuna.trial.FixedTrial(to_params(self._space, self._configs[trial_id]))
            suggest(self._space, fixed)  # records each active parameter's distribution
            trials.append(optuna.trial.create_trial(params=fixed.params, distributions=fixed.distributions, value=value))
        study.add_trials(trials)
        return suggest(self._space, study.ask())

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if trial_id not in self._live:
            return
        value = result.get(self._metric) if self._metric is not None else None
        budget = result.get(self._time_attr)
        if not finite_number(value) or not finite_number(budget):
            return
        self._results.setdefault(float(budget), {})[trial_id] = self._sign * float(value)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if not error and result is not None:
            self.on_trial_result(trial_id, result)
        self._live.pop(trial_id, None)

    def get_state(self) -> dict[str, Any]:
        return {
            "rng": self._rng.bit_generator.state,
            "points": self._points,
            "live": self._live,
            "results": self._results,
            "configs": self._configs,
            "priors": self._priors,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self._rng.bit_generator.state = state["rng"]
        self._points = state["points"]
        self._live = state["live"]
        self._results = state["results"]
        self._configs = state["configs"]
        self._priors = state["priors"]

