"""``search.algorithm: auto``: the searcher this project measured best for the problem, switched
during the run when it stops paying.

Before the run, :func:`choose` reads what the spec says (the decision table, in order; the first
rule that applies decides; docs/search-benchmark.md has the measurements behind it):

1. a PBT/PB2 scheduler: ``random`` (they explore by themselves and refuse a model);
2. nothing but constants in the space: ``random`` (nothing to model);
3. ``grid`` nodes: ``random`` (it enumerates them; a model would treat them as plain choices);
4. a conditional choice (branches): ``optuna_tpe`` (``gp`` models a fixed vector and refuses it);
5. more than :data:`GP_MAX_DIMENSIONS` parameters: ``optuna_tpe`` (``gp`` is measured up to there);
6. more than a third of the parameters are choices: ``optuna_tpe`` (categorical-heavy);
7. a budget of at most :data:`GP_STARTUP` trials: ``optuna_tpe`` (every trial would be a random
   start-up trial, and TPE's cost nothing);
8. ``max_concurrent`` above :data:`GP_MAX_CONCURRENT`: ``optuna_tpe`` (its constant liar spreads
   parallel suggestions; the GP has none);
9. torch or scipy not installed: ``optuna_tpe``;
10. otherwise ``gp``: the most sample-efficient on small smooth numeric spaces. Several metrics
    are fine for both (log expected hypervolume improvement, multi-objective TPE); ASHA and
    HyperBand only end trials early, which both searchers take as results.

During the run, :class:`AutoSearcher` moves from ``gp`` to ``optuna_tpe`` when the GP has learned
from ``gp_trials`` trials (its cost grows with each), or when a suggestion takes more than
``suggest_share`` of a trial's time (measured: the median of the last suggestions made by the model
against the median trial's ``time_total_s``). The new searcher is told every finished trial's
configuration and result first, and the trials still running are told to it as they end, so
nothing learned is lost.

Every decision (the start and each switch) is a :class:`SearchDecision`: an event in the run's
output and a row of ``search_decisions.parquet``; the searcher's saved state keeps them, so a
resumed or extended run goes on with the same searcher. With a ``seed`` the searchers are seeded
and the budget rule falls at a fixed trial; the time rule depends on the machine (docs/results.md).
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ray.tune.search import Searcher  # noqa: TID253 - imported only by the registry's factory

from raytuner.search.state import PickledState
from raytuner.search.values import finite_number
from raytuner.space.model import Choice, Constant, Nested, walk
from raytuner.spec.models import Algorithm, AutoSearch, SchedulerType

if TYPE_CHECKING:
    from raytuner.spec.loader import Experiment

GP_STARTUP = 10  # the GP's random start-up trials (GpSearch.n_startup_trials' default)
GP_MAX_DIMENSIONS = 24  # the most measured (docs/search-benchmark.md, h6in24); above it untested
GP_MAX_CONCURRENT = 8
TIMED_SUGGESTIONS = 3  # model suggestions timed before the time rule is applied
RECENT = 5  # the time rule's median is over this many latest suggestions


@dataclass(frozen=True)
class Pick:
    """What ``auto`` starts with, and why (one sentence)."""

    algorithm: Algorithm
    reason: str


@dataclass(frozen=True)
class SearchDecision:
    """One decision of ``auto`` (a row of ``search_decisions.parquet``, docs/results.md).

    Attributes:
        number: 0 for the searcher it started with, then 1, 2, ... for each switch.
        time: when it was taken (Unix seconds).
        trials: the finished trials (and warm-start priors) the searchers had learned from then.
        algorithm: the searcher from then on.
        previous: the searcher before (None at the start).
        reason: why, in one sentence.
        told: how many results the new searcher was told before its first suggestion.
    """

    number: int
    time: float
    trials: int
    algorithm: Algorithm
    previous: Algorithm | None
    reason: str
    told: int

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "trials": self.trials,
            "algorithm": self.algorithm.value,
            "previous": None if self.previous is None else self.previous.value,
            "reason": self.reason,
            "told": self.told,
        }


def choose(experiment: Experiment) -> Pick:
    """The searcher ``auto`` starts ``experiment`` with (the decision table in this module's doc)."""
    from raytuner.search import missing_requirement
    from raytuner.space.optuna import conditional_paths

    spec = experiment.spec
    search = spec.search
    space = experiment.space
    params = [node for _, node in walk(space.root) if not isinstance(node, (Nested, Constant))]
    choices = [node for node in params if isinstance(node, Choice)]
    if spec.scheduler.type in (SchedulerType.PBT, SchedulerType.PB2):
        return Pick(Algorithm.RANDOM, f"{spec.scheduler.type.value} explores by itself and refuses a model-based searcher")
    if not params:
        return Pick(Algorithm.RANDOM, "the space holds only constants: there is nothing to model")
    if any(node.grid for node in choices):
        return Pick(Algorithm.RANDOM, "the space has grid nodes, which random search enumerates")
    if conditional_paths(space):
        return Pick(Algorithm.OPTUNA_TPE, "the space has conditional branches, which gp cannot model")
    if len(params) > GP_MAX_DIMENSIONS:
        return Pick(
            Algorithm.OPTUNA_TPE, f"{_count(len(params), 'parameter')}, more than gp was measured with ({GP_MAX_DIMENSIONS})"
        )
    if 3 * len(choices) > len(params):
        return Pick(Algorithm.OPTUNA_TPE, f"{len(choices)} of {len(params)} parameters are choices (over a third)")
    if search.num_samples <= GP_STARTUP:
        return Pick(
            Algorithm.OPTUNA_TPE,
            f"{_count(search.num_samples, 'trial')}: all would be gp's {GP_STARTUP} random start-up trials",
        )
    if search.max_concurrent is not None and search.max_concurrent > GP_MAX_CONCURRENT:
        return Pick(
            Algorithm.OPTUNA_TPE,
            f"max_concurrent {search.max_concurrent}: over {GP_MAX_CONCURRENT} parallel trials TPE's constant liar "
            "spreads them, gp has none",
        )
    if (hint := missing_requirement(Algorithm.GP)) is not None:
        return Pick(Algorithm.OPTUNA_TPE, f"gp would fit best, but {hint}")
    objectives = f", {len(spec.objectives)} metrics" if spec.multi_objective else ""
    return Pick(
        Algorithm.GP,
        f"{_count(len(params), 'parameter')}, {len(params) - len(choices)} numeric, no branches{objectives}: gp is the most "
        "sample-efficient here",
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def as_algorithm(experiment: Experiment, algorithm: Algorithm, points: list[dict[str, Any]] | None = None) -> Experiment:
    """``experiment`` with its ``auto`` search replaced by ``algorithm`` with that algorithm's
    defaults (and ``points`` as its points to evaluate, when given)."""
    from raytuner.spec.models import SearchBase, Spec

    search = experiment.spec.search
    base = {name: getattr(search, name) for name in SearchBase.model_fields}
    if points is not None:
        base["points_to_evaluate"] = points
    data = experiment.spec.model_dump(by_alias=True)
    data["search"] = {**base, "algorithm": algorithm.value}
    data["search"]["warm_start"] = None if search.warm_start is None else search.warm_start.model_dump()
    return dataclasses.replace(experiment, spec=Spec.model_validate(data))


def resolved(experiment: Experiment) -> Experiment:
    """``experiment`` as the searcher ``auto`` starts with (itself when it names another algorithm)."""
    if experiment.spec.search.algorithm is not Algorithm.AUTO:
        return experiment
    return as_algorithm(experiment, choose(experiment).algorithm)


class AutoSearcher(PickledState, Searcher):
    """The searcher :func:`choose` picks, replaced by ``optuna_tpe`` when the GP stops paying."""

    def __init__(self, experiment: Experiment, clock: Callable[[], float] = time.perf_counter) -> None:
        spec = experiment.spec
        super().__init__(metric=spec.metric, mode=spec.mode.value)
        search = spec.search
        self._options = search if isinstance(search, AutoSearch) else AutoSearch()
        self._experiment = experiment
        self._metrics = [o.metric for o in spec.objectives] if spec.multi_objective else [spec.metric]
        self._clock = clock
        pick = choose(experiment)
        self._algorithm = pick.algorithm
        self._inner = self._build(pick.algorithm, None)
        self._generation = 0  # which searcher suggested a trial: the current one, or an earlier one
        self._history: list[tuple[dict[str, Any], tuple[float, ...]]] = []  # every result learned from
        self._live: dict[str, tuple[int, dict[str, Any], float]] = {}  # trial -> generation, config, wall start
        self._costs: list[float] = []  # seconds per suggestion the current model made
        self._durations: list[float] = []  # seconds per finished trial
        self._decisions = [SearchDecision(0, time.time(), 0, pick.algorithm, None, pick.reason, 0)]
        self._drained = 0

    @property
    def algorithm(self) -> Algorithm:
        """The searcher suggesting now."""
        return self._algorithm

    @property
    def inner(self) -> Any:
        return self._inner

    @property
    def decisions(self) -> list[SearchDecision]:
        return list(self._decisions)

    def drain(self) -> list[SearchDecision]:
        """The decisions not handed out yet (all of them after a restore: the records skip the known ones)."""
        taken = self._decisions[self._drained :]
        self._drained = len(self._decisions)
        return taken

    def _build(self, algorithm: Algorithm, points: list[dict[str, Any]] | None) -> Any:
        from raytuner.search import SEARCHERS

        return SEARCHERS[algorithm](as_algorithm(self._experiment, algorithm, points))

    # ------------------------------------------------------------------ Ray's Searcher

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        modelled = len(self._history) >= GP_STARTUP
        start = self._clock()
        config = self._inner.suggest(trial_id)
        cost = self._clock() - start
        if not isinstance(config, dict):  # None (wait) or Ray's FINISHED, a string
            return cast("dict[str, Any] | None", config)
        if modelled:
            self._costs.append(cost)
        self._live[trial_id] = (self._generation, config, time.monotonic())
        return config

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        live = self._live.get(trial_id)
        if live is not None and live[0] == self._generation:
            self._inner.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        live = self._live.pop(trial_id, None)
        if live is None:  # unknown, or told already (a restore's agreement with Ray's trials)
            return
        generation, config, started = live
        values = None if error or result is None else self._values(result)
        if generation == self._generation:
            self._inner.on_trial_complete(trial_id, result=result, error=error)
        elif values is not None:  # suggested by the searcher before a switch: the new one learns it here
            self._tell(self._inner, config, values)
        if values is None:
            return
        self._history.append((dict(config), values))
        took = (result or {}).get("time_total_s")
        self._durations.append(float(took) if finite_number(took) and took > 0 else time.monotonic() - started)
        self._maybe_switch()

    def add_evaluated(self, config: dict[str, Any], value: float | list[float]) -> None:
        """A result from elsewhere (a warm start), told to the current searcher and kept for the next."""
        values = (float(value),) if isinstance(value, (int, float)) else tuple(float(v) for v in value)
        self._tell(self._inner, config, values)
        self._history.append((dict(config), values))

    def _values(self, result: dict[str, Any]) -> tuple[float, ...] | None:
        values = [result.get(name) for name in self._metrics]
        numbers = tuple(float(v) for v in values if finite_number(v))
        return numbers if len(numbers) == len(values) else None

    @staticmethod
    def _tell(searcher: Any, config: dict[str, Any], values: tuple[float, ...]) -> None:
        searcher.add_evaluated(config, values[0] if len(values) == 1 else list(values))

    # ------------------------------------------------------------------ switching

    def _maybe_switch(self) -> None:
        if self._algorithm is not Algorithm.GP:
            return
        learned = len(self._history)
        if learned >= self._options.gp_trials:
            self._switch(Algorithm.OPTUNA_TPE, f"gp has learned from {learned} trials (gp_trials {self._options.gp_trials})")
            return
        if len(self._costs) < TIMED_SUGGESTIONS:
            return
        cost = statistics.median(self._costs[-RECENT:])
        trial = statistics.median(self._durations)
        if cost > self._options.suggest_share * trial:
            self._switch(
                Algorithm.OPTUNA_TPE,
                f"a gp suggestion took {cost:.3g} s, over {self._options.suggest_share:.0%} of a trial's {trial:.3g} s",
            )

    def _switch(self, algorithm: Algorithm, reason: str) -> None:
        points = list(self._inner.get_state().get("points", []))  # points to evaluate not yet suggested
        inner = self._build(algorithm, points)
        for config, values in self._history:
            self._tell(inner, config, values)
        previous = self._algorithm
        self._inner, self._algorithm = inner, algorithm
        self._generation += 1
        self._costs = []
        number = len(self._decisions)
        told = len(self._history)
        self._decisions.append(SearchDecision(number, time.time(), told, algorithm, previous, reason, told))

    # ------------------------------------------------------------------ saved state

    def get_state(self) -> dict[str, Any]:
        return {
            "algorithm": self._algorithm.value,
            "inner": self._inner.get_state(),
            "generation": self._generation,
            "history": self._history,
            "live": self._live,
            "costs": self._costs,
            "durations": self._durations,
            "decisions": [dataclasses.asdict(d) for d in self._decisions],
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Go on as saved: the saved searcher, whatever :func:`choose` would pick for the spec now
        (an extended run may have a larger budget)."""
        algorithm = Algorithm(state["algorithm"])
        if algorithm is not self._algorithm:
            self._inner = self._build(algorithm, [])
            self._algorithm = algorithm
        self._inner.set_state(state["inner"])
        self._generation = int(state["generation"])
        self._history = list(state["history"])
        self._live = dict(state["live"])
        self._costs = list(state["costs"])
        self._durations = list(state["durations"])
        self._decisions = [SearchDecision(**d) for d in state["decisions"]]
        self._drained = 0
