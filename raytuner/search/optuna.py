"""Optuna's samplers as one Ray Tune ``Searcher``, driven by ask/tell over the parsed space.

Each Ray trial is one Optuna trial: ``suggest`` asks the study for a trial and walks the
space define-by-run (:mod:`raytuner.space.optuna`), so conditional branches are suggested
only when chosen; ``on_trial_complete`` tells the study the metric, or that the trial
failed (a failed trial teaches the sampler nothing and is not retried blindly). Points to
evaluate are enqueued as fixed parameters, and earlier results can be added as completed
trials before the first suggestion (warm start).

The samplers (TPE, CMA-ES, GP, NSGA-II) are built by :data:`SAMPLERS`, one factory per
algorithm, from the spec's options; nothing is silently dropped.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from ray.tune.search import Searcher  # noqa: TID253 - imported only by the registry's factory

from raytuner.search.state import PickledState
from raytuner.search.values import finite_number
from raytuner.space.optuna import conditional_paths, suggest, to_params
from raytuner.space.points import complete_point
from raytuner.spec.models import Algorithm

if TYPE_CHECKING:
    from raytuner.space.model import Space
    from raytuner.spec.loader import Experiment


class OptunaSearcher(PickledState, Searcher):
    """An Optuna sampler over a (possibly conditional) space, one Optuna trial per Ray trial."""

    def __init__(
        self,
        space: Space,
        metric: str,
        mode: str,
        sampler: optuna.samplers.BaseSampler,
        *,
        points: list[dict[str, Any]] | None = None,
        evaluated: Sequence[tuple[dict[str, Any], float | Sequence[float]]] = (),
        seed: int | None = None,
        objectives: Sequence[tuple[str, str]] = (),
    ) -> None:
        # Ray Tune sees one metric (the first objective); with several ``objectives``
        # ((metric, mode) pairs, the first being ``metric``) Optuna is told every value.
        super().__init__(metric=metric, mode=mode)
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no line per trial on tell
        self._space = space
        self._rng = np.random.default_rng(seed)
        self._metrics = [name for name, _ in objectives] or [metric]
        directions = [
            optuna.study.StudyDirection.MAXIMIZE if m == "max" else optuna.study.StudyDirection.MINIMIZE
            for _, m in objectives or [(metric, mode)]
        ]
        self._study = optuna.create_study(sampler=sampler, directions=directions)
        self._points = list(points or [])
        self._live: dict[str, Any] = {}
        for config, value in evaluated:
            self.add_evaluated(config, value)

    @classmethod
    def for_experiment(cls, experiment: Experiment) -> OptunaSearcher:
        spec = experiment.spec
        search = spec.search
        sampler = SAMPLERS[search.algorithm](search, experiment.space)
        return cls(
            experiment.space,
            spec.metric,
            spec.mode.value,
            sampler,
            points=search.points_to_evaluate,
            seed=search.seed,
            objectives=[(o.metric, o.mode.value) for o in spec.objectives] if spec.multi_objective else (),
        )

    @property
    def study(self) -> optuna.Study:
        return self._study

    def add_evaluated(self, config: dict[str, Any], value: float | Sequence[float]) -> None:
        """Tell the sampler about a configuration evaluated elsewhere (an earlier experiment).

        ``value`` is the metric's value, or one value per objective when there are several.
        """
        # a trial fixed to the config's parameters, walked like any other so Optuna records
        # each parameter's distribution with its value
        self._study.enqueue_trial(to_params(self._space, config))
        fixed = self._study.ask()
        suggest(self._space, fixed)
        self._study.tell(fixed, float(value) if isinstance(value, (int, float)) else [float(v) for v in value])

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        point = None
        if self._points:
            point = complete_point(self._space, self._points.pop(0), self._rng)
            self._study.enqueue_trial(to_params(self._space, point))
        trial = self._study.ask()
        config = suggest(self._space, trial)
        self._live[trial_id] = trial
        return point if point is not None else config

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        trial = self._live.pop(trial_id, None)
        if trial is None:
            return
        values = [None if result is None else result.get(name) for name in self._metrics]
        numbers = [float(value) for value in values if finite_number(value)]
        if error or len(numbers) != len(values):
            self._study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            self._study.tell(trial, numbers if len(numbers) > 1 else numbers[0])

    def get_state(self) -> dict[str, Any]:
        return {
            "study": self._study,
            "rng": self._rng.bit_generator.state,
            "points": self._points,
            "live": self._live,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self._study = state["study"]
        self._rng.bit_generator.state = state["rng"]
        self._points = state["points"]
        self._live = state["live"]



def _quiet(build: Callable[[], optuna.samplers.BaseSampler]) -> optuna.samplers.BaseSampler:
    # multivariate/group TPE and GPSampler warn that they are experimental on every construction
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return build()


def _tpe(search: Any, space: Space) -> optuna.samplers.BaseSampler:
    conditional = bool(conditional_paths(space))
    return _quiet(
        lambda: optuna.samplers.TPESampler(
            seed=search.seed,
            n_startup_trials=search.n_startup_trials,
            n_ei_candidates=search.n_ei_candidates,
            multivariate=search.multivariate,
            # group: one multivariate model per set of parameters that appear together (each branch)
            group=search.multivariate and conditional,
            constant_liar=search.constant_liar,
        )
    )


def _cmaes(search: Any, space: Space) -> optuna.samplers.BaseSampler:
    return optuna.samplers.CmaEsSampler(
        seed=search.seed,
        n_startup_trials=search.n_startup_trials,
        sigma0=search.sigma0,
        popsize=search.popsize,
        with_margin=search.with_margin,
        # categorical choices have no coordinates: CMA-ES leaves them to random sampling
        independent_sampler=optuna.samplers.RandomSampler(seed=search.seed),
        warn_independent_sampling=False,
    )


def _gp(search: Any, space: Space) -> optuna.samplers.BaseSampler:
    return _quiet(
        lambda: optuna.samplers.GPSampler(
            seed=search.seed,
            n_startup_trials=search.n_startup_trials,
            deterministic_objective=search.deterministic_objective,
            warn_independent_sampling=False,
        )
    )


def _nsga2(search: Any, space: Space) -> optuna.samplers.BaseSampler:
    return optuna.samplers.NSGAIISampler(
        seed=search.seed,
        population_size=search.population_size,
        mutation_prob=search.mutation_prob,
        crossover_prob=search.crossover_prob,
        swapping_prob=search.swapping_prob,
    )


SAMPLERS: dict[Algorithm, Callable[[Any, Space], optuna.samplers.BaseSampler]] = {
    Algorithm.OPTUNA_TPE: _tpe,
    Algorithm.CMAES: _cmaes,
    Algorithm.GP: _gp,
    Algorithm.NSGA2: _nsga2,
}
