"""Search algorithms, a registry keyed by :class:`~raytuner.spec.models.Algorithm`.

Each factory imports its library inside, so importing this package stays cheap. Every
algorithm draws from the same parsed space; none of them silently drops an option.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from raytuner.space.sample import grid_size
from raytuner.spec.models import Algorithm, SchedulerType

if TYPE_CHECKING:
    from raytuner.spec.loader import Experiment


@dataclass(frozen=True)
class SearchPlan:
    """The searcher for the Tuner and how many trials it will start."""

    searcher: Any
    total_trials: int
    told: int = 0  # earlier trials a warm start told the searcher before its first suggestion
    decisions: Callable[[], list[Any]] | None = None  # auto's new decisions (AutoSearcher.drain), if auto


def total_trials(experiment: Experiment) -> int:
    """Trials the experiment will start (before a time budget cuts it short)."""
    search = experiment.spec.search
    if search.algorithm is Algorithm.AUTO:
        from raytuner.search.auto import resolved

        return total_trials(resolved(experiment))
    if search.algorithm is Algorithm.GRID:
        return len(search.points_to_evaluate) + grid_size(experiment.space, True) * search.num_samples
    if search.algorithm is Algorithm.RANDOM:
        return max(search.num_samples * grid_size(experiment.space, False), len(search.points_to_evaluate))
    return max(search.num_samples, len(search.points_to_evaluate))


def _random(experiment: Experiment) -> Any:
    from raytuner.search.sampler import SpaceSearcher

    return SpaceSearcher.for_experiment(experiment, enumerate_choices=False, total=total_trials(experiment))


def _grid(experiment: Experiment) -> Any:
    from raytuner.search.sampler import SpaceSearcher

    return SpaceSearcher.for_experiment(experiment, enumerate_choices=True, total=total_trials(experiment))


def _hyperopt(experiment: Experiment) -> Any:
    from raytuner.search.hyperopt import TpeSearcher

    return TpeSearcher.for_experiment(experiment)


def _optuna(experiment: Experiment) -> Any:
    from raytuner.search.optuna import OptunaSearcher

    return OptunaSearcher.for_experiment(experiment)


def _nevergrad(experiment: Experiment) -> Any:
    from raytuner.search.nevergrad import NevergradSearcher

    return NevergradSearcher.for_experiment(experiment)


def _bohb(experiment: Experiment) -> Any:
    from raytuner.search.bohb import BohbSearcher

    return BohbSearcher.for_experiment(experiment)


def _auto(experiment: Experiment) -> Any:
    from raytuner.search.auto import AutoSearcher

    return AutoSearcher(experiment)


SEARCHERS: dict[Algorithm, Callable[[Experiment], Any]] = {
    Algorithm.RANDOM: _random,
    Algorithm.GRID: _grid,
    Algorithm.HYPEROPT: _hyperopt,
    Algorithm.OPTUNA_TPE: _optuna,
    Algorithm.CMAES: _optuna,
    Algorithm.GP: _optuna,
    Algorithm.NSGA2: _optuna,
    Algorithm.NEVERGRAD_DE: _nevergrad,
    Algorithm.BOHB: _bohb,
    Algorithm.AUTO: _auto,
}

# Searchers that learn from results, and so can be warm-started (``add_evaluated``).
WARM_STARTABLE: frozenset[Algorithm] = frozenset(Algorithm) - {Algorithm.RANDOM, Algorithm.GRID}

# Algorithms that accept several metrics (a list ``metric``): Optuna's NSGA-II, multi-objective
# TPE and GPSampler (log expected hypervolume improvement) model all of them; random and grid do
# not look at metrics at all; auto picks among these. HyperOpt, CMA-ES, Nevergrad's DE and BOHB
# model one number.
MULTI_OBJECTIVE: frozenset[Algorithm] = frozenset(
    {Algorithm.RANDOM, Algorithm.GRID, Algorithm.OPTUNA_TPE, Algorithm.NSGA2, Algorithm.GP, Algorithm.AUTO}
)

# Optional libraries each algorithm imports, with the extra that installs them (optuna itself
# is a core dependency: optuna_tpe is the default, and nsga2 and bohb need nothing more).
REQUIREMENTS: dict[Algorithm, tuple[tuple[str, ...], str]] = {
    Algorithm.CMAES: (("cmaes",), "optuna"),
    Algorithm.GP: (("scipy", "torch"), "optuna,torch"),
    Algorithm.NEVERGRAD_DE: (("nevergrad",), "nevergrad"),
}


def missing_requirement(algorithm: Algorithm) -> str | None:
    """A one-line install hint if a library ``algorithm`` needs is not installed, else None."""
    import importlib.util

    modules, extra = REQUIREMENTS.get(algorithm, ((), ""))
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if not missing:
        return None
    return f"algorithm {algorithm.value} needs {', '.join(missing)}: pip install 'raytuner[{extra}]'"


def create_search(experiment: Experiment) -> SearchPlan:
    """The Ray Tune searcher for ``experiment``, limited to ``max_concurrent`` if set."""
    from ray.tune.search import ConcurrencyLimiter

    search = experiment.spec.search
    searcher = SEARCHERS[search.algorithm](experiment)
    told = 0
    if search.warm_start is not None:
        from raytuner.search.warm_start import warm

        told = warm(searcher, experiment)
    decisions = getattr(searcher, "drain", None) if search.algorithm is Algorithm.AUTO else None
    if search.max_concurrent is not None:
        searcher = ConcurrencyLimiter(searcher, max_concurrent=search.max_concurrent)
    if experiment.spec.scheduler.type in (SchedulerType.PBT, SchedulerType.PB2):
        from raytuner.search.population import PopulationSearch

        searcher = PopulationSearch(searcher)
    return SearchPlan(searcher, total_trials(experiment), told, decisions)
