"""Checks across the spec's parts, run once every part is valid on its own.

These catch combinations that Ray Tune would only reject (or mishandle) after starting:
a space the searcher cannot use, points outside the space, a grid too large to run, a
trainable that does not resolve or does not fit its space.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from raytuner.errors import Location, SpecError
from raytuner.space.model import Choice, Constant, Nested, Node, Path, walk
from raytuner.space.points import PointError, complete_point
from raytuner.space.sample import grid_size
from raytuner.spec.loader import Experiment
from raytuner.spec.models import Algorithm, Spec

MAX_GRID = 1_000_000

# Searchers that learn from results (everything but random and grid).
MODEL_BASED = frozenset(Algorithm) - {Algorithm.RANDOM, Algorithm.GRID}

# Searchers that model a fixed vector of parameters, so refuse conditional choices; every other
# one walks the space's tree (or, random and grid, samples it).
FIXED_VECTOR = frozenset({Algorithm.CMAES, Algorithm.GP})

Locate = Callable[[Path], Location]


def check_experiment(experiment: Experiment, locate: Locate) -> None:
    """Raise the first :class:`SpecError` found in ``experiment``'s combination of parts."""
    from raytuner.search.auto import resolved

    _check_storage(experiment, locate)
    _check_points(experiment, locate)
    searched = resolved(experiment)  # auto is checked as the searcher it starts with (it picks none that refuses)
    _check_objectives(searched, locate)
    _check_search(searched, locate)
    _check_warm_start(searched, locate)
    _check_population(searched, locate)
    _check_inline(experiment, locate)
    _check_checkpoint_score(experiment, locate)
    from raytuner.workloads import check_trainable

    check_trainable(experiment, locate)


def _check_storage(experiment: Experiment, locate: Locate) -> None:
    """A folder, or object storage raytuner can mirror to; any other URL would become a local folder named after it."""
    from raytuner.results.remote import check_scheme, is_uri

    storage = experiment.spec.storage
    if is_uri(storage) and (problem := check_scheme(storage)) is not None:
        raise SpecError(problem, locate(("storage",)))


def _check_objectives(experiment: Experiment, locate: Locate) -> None:
    """Several metrics need a searcher that models them all (or none) and a scheduler that stops nothing.

    A scheduler compares trials on one metric: ASHA or the median rule on the first objective
    would stop the trials that are good on the others, and the front would quietly lose them.
    """
    from raytuner.search import MULTI_OBJECTIVE
    from raytuner.spec.models import SchedulerType

    spec = experiment.spec
    if not spec.multi_objective:
        return
    names = ", ".join(o.metric for o in spec.objectives)
    algorithm = spec.search.algorithm
    if algorithm not in MULTI_OBJECTIVE:
        usable = ", ".join(a.value for a in Algorithm if a in MULTI_OBJECTIVE)
        raise SpecError(
            f"algorithm {algorithm.value} optimizes one metric, found {len(spec.objectives)} ({names}); "
            f"for several metrics use one of {usable}",
            locate(("search", "algorithm")),
        )
    scheduler = spec.scheduler.type
    if scheduler is not SchedulerType.FIFO:
        raise SpecError(
            f"scheduler {scheduler.value} compares trials on one metric and would stop trials that are good on "
            f"the others ({names}); several metrics need scheduler: fifo (stop: still ends trials)",
            locate(("scheduler", "type")),
        )


def _check_points(experiment: Experiment, locate: Locate) -> None:
    rng = np.random.default_rng(0)
    for i, point in enumerate(experiment.spec.search.points_to_evaluate):
        try:
            complete_point(experiment.space, point, rng)
        except PointError as exc:
            raise SpecError(str(exc), locate(("search", "points_to_evaluate", i, *exc.path))) from exc


def _check_search(experiment: Experiment, locate: Locate) -> None:
    search = experiment.spec.search
    space = experiment.space
    if search.algorithm is Algorithm.HYPEROPT and not _has_searchable(space.root):
        raise SpecError(
            "hyperopt needs at least one distribution or choice in the space, found only constants; "
            "use algorithm: random to run constant configurations",
            locate(("search", "algorithm")),
        )
    if search.algorithm in MODEL_BASED and search.algorithm is not Algorithm.HYPEROPT:
        _check_optuna_search(experiment, locate)
    if search.algorithm is Algorithm.BOHB:
        _check_bohb(experiment, locate)
    if search.algorithm in (Algorithm.GRID, Algorithm.RANDOM):
        size = grid_size(space, enumerate_choices=search.algorithm is Algorithm.GRID)
        total = size * search.num_samples
        if total > MAX_GRID:
            raise SpecError(
                f"this grid has {size:,} points x {search.num_samples} samples = {total:,} trials; "
                f"the limit is {MAX_GRID:,}",
                locate(("search",)),
            )


def _check_warm_start(experiment: Experiment, locate: Locate) -> None:
    """A warm start needs a searcher that learns and an earlier run of the same metrics that this space covers.

    With several metrics only the multi-objective searchers get here (:func:`_check_objectives`
    runs first), and each is told one value per metric.
    """
    from raytuner.search import WARM_STARTABLE
    from raytuner.search.warm_start import WarmStartError, priors_for

    spec = experiment.spec
    if spec.search.warm_start is None:
        return
    algorithm = spec.search.algorithm
    if algorithm not in WARM_STARTABLE:
        raise SpecError(
            f"{algorithm.value} search does not learn from results, so a warm start would change nothing; "
            "use a model-based algorithm (optuna_tpe, hyperopt, ...) or drop warm_start",
            locate(("search", "warm_start")),
        )
    try:
        priors_for(experiment)
    except WarmStartError as exc:
        raise SpecError(f"warm start: {exc}", locate(("search", "warm_start", exc.key))) from exc


def _check_checkpoint_score(experiment: Experiment, locate: Locate) -> None:
    """``checkpoint.score`` names a metric the trainable reports, and which way is better."""
    from raytuner.workloads import reported_metrics

    spec = experiment.spec
    score = spec.checkpoint.score
    if score is None:
        return
    known = reported_metrics(spec.trainable)
    if known is not None and score.metric not in known:
        raise SpecError(
            f"the trainable reports {', '.join(known)}; found score metric '{score.metric}'",
            locate(("checkpoint", "score", "metric")),
        )
    if known is not None and not spec.checkpoint.every:
        raise SpecError(
            "checkpoint.score ranks the trials' checkpoints, but with checkpoint.every 0 a built-in workload makes "
            "none; set checkpoint.every (e.g. 1: every epoch)",
            locate(("checkpoint", "every") if "every" in spec.checkpoint.model_fields_set else ("checkpoint",)),
        )
    if score.mode is None and score.metric not in [o.metric for o in spec.objectives]:
        raise SpecError(
            f"'{score.metric}' is not the spec's metric, so the spec's mode does not say whether larger or smaller "
            f"is better; give score: {{metric: {score.metric}, mode: max}} (or min)",
            locate(("checkpoint", "score")),
        )


def _check_inline(experiment: Experiment, locate: Locate) -> None:
    """``execution.backend: inline`` runs trials as threads of one process: what needs actors is refused."""
    from raytuner.spec.models import Backend

    if experiment.spec.execution.backend is not Backend.INLINE:
        return
    obstacle = inline_obstacle(experiment.spec)
    if obstacle is not None:
        message, path = obstacle
        raise SpecError(f"execution.backend inline {message}; use execution.backend: ray", locate(path))


def inline_obstacle(spec: Spec) -> tuple[str, Path] | None:
    """Why ``spec`` cannot run inline (the reason, and the key to point at), or None if it can."""
    from raytuner.results.remote import is_uri
    from raytuner.spec.models import SchedulerType

    scheduler = spec.scheduler.type
    if scheduler in (SchedulerType.HYPERBAND, SchedulerType.PBT, SchedulerType.PB2):
        return (
            f"runs the fifo, asha and median schedulers, found {scheduler.value} (it pauses or clones trials, which "
            "needs Ray's trial actors)",
            ("scheduler", "type"),
        )
    if spec.resources.gpu > 0:
        return (
            "runs trials in threads of one process, which cannot each get their own GPU; found resources.gpu "
            f"{spec.resources.gpu:g}",
            ("resources", "gpu"),
        )
    if spec.resources.custom:
        return f"has no custom resources, found {sorted(spec.resources.custom)}", ("resources", "custom")
    if spec.execution.loggers:
        found = [logger.value for logger in spec.execution.loggers]
        return f"has no per-trial loggers or trackers (Ray's callbacks), found {found}", ("execution", "loggers")
    if spec.failure.trial_timeout_s is not None:
        return (
            "cannot end a hung trial (a thread cannot be killed), found failure.trial_timeout_s "
            f"{spec.failure.trial_timeout_s:g}",
            ("failure", "trial_timeout_s"),
        )
    if is_uri(spec.storage):
        return (
            f"keeps checkpoints and its resume state in a local folder, found storage {spec.storage}",
            ("storage",),
        )
    return None


def _check_bohb(experiment: Experiment, locate: Locate) -> None:
    """BOHB's model picks configurations; HyperBand's brackets give them their budgets: one needs the other."""
    from raytuner.spec.models import SchedulerType

    scheduler = experiment.spec.scheduler.type
    if scheduler is not SchedulerType.HYPERBAND:
        raise SpecError(
            f"bohb runs its model with HyperBand's brackets, found scheduler {scheduler.value}; set scheduler: "
            "{type: hyperband} (or use algorithm: optuna_tpe with this scheduler)",
            locate(("scheduler", "type")),
        )


def _check_optuna_search(experiment: Experiment, locate: Locate) -> None:
    """Optuna's samplers: installed, and given a space they can model.

    TPE and NSGA-II walk the space define-by-run, so conditional branches work. CMA-ES and
    the GP model a fixed vector of coordinates: a conditional branch would make that vector
    change from trial to trial (Optuna would silently sample those parameters at random), so
    they refuse it; CMA-ES also needs at least one numeric parameter to move.
    """
    from raytuner.search import missing_requirement
    from raytuner.space.optuna import conditional_paths, numeric_paths

    search = experiment.spec.search
    space = experiment.space
    name = search.algorithm.value
    hint = missing_requirement(search.algorithm)
    if hint is not None:
        raise SpecError(hint, locate(("search", "algorithm")))
    if not _has_searchable(space.root):
        raise SpecError(
            f"{name} needs at least one distribution or choice in the space, found only constants; "
            "use algorithm: random to run constant configurations",
            locate(("search", "algorithm")),
        )
    if search.algorithm in FIXED_VECTOR:
        branches = conditional_paths(space)
        if branches:
            usable = ", ".join(
                a.value + (" (with scheduler: hyperband)" if a is Algorithm.BOHB else "")
                for a in Algorithm
                if a not in FIXED_VECTOR
            )
            raise SpecError(
                f"{name} models a fixed set of parameters and cannot search a conditional choice (a choice "
                f"of mappings); use algorithm: {usable}, or flatten the branches",
                locate(("space", *_yaml_path(space.root, branches[0]))),
            )
    if search.algorithm is Algorithm.CMAES and not numeric_paths(space):
        raise SpecError(
            "cmaes moves numeric parameters, found only choices; use algorithm: optuna_tpe, hyperopt or "
            "random for a categorical space",
            locate(("search", "algorithm")),
        )


def _yaml_path(root: Nested, path: Path) -> Path:
    """A path inside the parsed space as a key path in the YAML (choices add their operator)."""
    out: list[str | int] = []
    node: Node = root
    for part in path:
        if isinstance(node, Choice):
            out.append("grid" if node.grid else "choice")
            node = node.options[int(part)]
        elif isinstance(node, Nested):
            node = dict(node.items)[str(part)]
        out.append(part)
    if isinstance(node, Choice):
        out.append("grid" if node.grid else "choice")
    return tuple(out)


def _has_searchable(root: Nested) -> bool:
    return any(not isinstance(node, (Nested, Constant)) for _, node in walk(root)) or any(
        isinstance(node, Choice) for _, node in walk(root)
    )


def _check_population(experiment: Experiment, locate: Locate) -> None:
    """PBT and PB2 restore checkpoints: refuse trainables and intervals that cannot work."""
    from raytuner.spec.models import Pb2Scheduler, PbtScheduler

    scheduler = experiment.spec.scheduler
    if not isinstance(scheduler, (PbtScheduler, Pb2Scheduler)):
        return
    kind = scheduler.type.value
    if experiment.spec.search.algorithm in MODEL_BASED:
        raise SpecError(
            f"{kind} explores by itself and Ray refuses model-based searchers with it (they would learn "
            "from perturbed results); use algorithm: random or grid for the initial population",
            locate(("search", "algorithm")),
        )
    if isinstance(scheduler, PbtScheduler):
        from raytuner.schedulers import parse_mutations

        mutations = parse_mutations(scheduler.hyperparam_mutations, locate)
        if not mutations.root.items:
            raise SpecError(f"{kind} needs at least one hyperparameter to mutate", locate(("scheduler", "hyperparam_mutations")))
        for path, node in walk(mutations.root):
            if isinstance(node, Choice) and node.conditional:
                raise SpecError(
                    "a choice of mappings (conditional branches) cannot be mutated by PBT; mutate the "
                    "values inside a branch instead",
                    locate(("scheduler", "hyperparam_mutations", *path)),
                )
    else:
        from raytuner.schedulers import check_pb2

        check_pb2(locate(("scheduler", "type")))
    _check_checkpointing(experiment, locate, kind, scheduler.perturbation_interval, scheduler.time_attr)


def _check_checkpointing(experiment: Experiment, locate: Locate, kind: str, interval: float, time_attr: str) -> None:
    from raytuner.spec.models import FunctionTrainable

    trainable = experiment.spec.trainable
    every = experiment.spec.checkpoint.every
    if isinstance(trainable, FunctionTrainable):
        from raytuner.spec.models import object_label
        from raytuner.workloads.function import can_checkpoint, resolve

        target = resolve(trainable.function, experiment.base_dir, locate(("trainable", "function")))
        if not can_checkpoint(target):
            named = trainable.function if isinstance(trainable.function, str) else object_label(target)
            raise SpecError(
                f"{kind} copies checkpoints between trials, but '{named}' never restores one "
                "(a function must call tune.get_checkpoint(); a class must implement load_checkpoint)",
                locate(("scheduler", "type")),
            )
        return
    if not hasattr(trainable, "builtin"):  # a command: it restores through its checkpoint folder
        if not getattr(trainable, "checkpoint", False):
            raise SpecError(
                f"{kind} copies checkpoints between trials; this command has checkpoint: false",
                locate(("trainable", "checkpoint")),
            )
        return
    if every == 0:
        raise SpecError(
            f"{kind} copies checkpoints between trials; set checkpoint.every (e.g. to the perturbation "
            f"interval, {interval:g})",
            locate(("checkpoint",)),
        )
    if time_attr == "training_iteration" and interval % every != 0:
        raise SpecError(
            f"perturbation_interval {interval:g} is not a multiple of checkpoint.every {every}: {kind} would "
            "restore checkpoints older than the scores it compares",
            locate(("scheduler", "perturbation_interval")),
        )
