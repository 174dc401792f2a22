"""The typed spec: what one YAML file says about an experiment.

Every model is frozen and forbids unknown keys. Closed sets are Enums; the same Enums drive
the search and scheduler registries, the JSON Schema and ``--help``. The ``space`` mapping
stays raw here and is parsed by :mod:`raytuner.space` (its own language, its own errors).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    PlainValidator,
    Tag,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from raytuner.spec.base import Model

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
FUNCTION_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$"
MetricName = Annotated[str, Field(min_length=1)]


class Mode(str, Enum):
    MIN = "min"
    MAX = "max"


@dataclass(frozen=True)
class Objective:
    """One metric to optimize and its direction (a spec has one, or several: multi-objective)."""

    metric: str
    mode: Mode

    @property
    def sign(self) -> float:
        """+1 when larger is better."""
        return 1.0 if self.mode is Mode.MAX else -1.0


class Algorithm(str, Enum):
    """Search algorithms (the registry in :mod:`raytuner.search` has one factory each)."""

    RANDOM = "random"
    GRID = "grid"
    HYPEROPT = "hyperopt"
    OPTUNA_TPE = "optuna_tpe"
    CMAES = "cmaes"
    GP = "gp"
    NSGA2 = "nsga2"
    NEVERGRAD_DE = "nevergrad_de"
    BOHB = "bohb"
    AUTO = "auto"


class SchedulerType(str, Enum):
    """Trial schedulers (the registry in :mod:`raytuner.schedulers` has one factory each)."""

    FIFO = "fifo"
    ASHA = "asha"
    HYPERBAND = "hyperband"
    MEDIAN = "median"
    PBT = "pbt"
    PB2 = "pb2"


class Logger(str, Enum):
    """Ray Tune's per-trial logger files and its tracking integrations, off unless asked for."""

    CSV = "csv"
    JSON = "json"
    TENSORBOARD = "tensorboard"
    MLFLOW = "mlflow"
    WANDB = "wandb"


class Backend(str, Enum):
    """Where trials run: Ray actors (local or a cluster), or threads of the raytuner process."""

    RAY = "ray"
    INLINE = "inline"


# the loggers that need an optional package: logger -> (module, raytuner extra)
TRACKER_PACKAGES: dict[Logger, tuple[str, str]] = {Logger.MLFLOW: ("mlflow", "mlflow"), Logger.WANDB: ("wandb", "wandb")}


class AnalyticObjective(str, Enum):
    SPHERE = "sphere"
    BRANIN = "branin"
    HARTMANN3 = "hartmann3"
    HARTMANN6 = "hartmann6"
    ROSENBROCK = "rosenbrock"
    ZDT1 = "zdt1"
    BINH_KORN = "binh_korn"


# ---------------------------------------------------------------------------- trainables


class AnalyticTrainable(Model):
    """A built-in analytic objective (no torch) that reports a decaying loss per iteration.

    ``loss`` at iteration t is ``f(config) + decay / t``: it falls towards the objective's
    value, so early stopping has real curves to compare.
    """

    builtin: Literal["analytic"]
    objective: AnalyticObjective = Field(
        AnalyticObjective.SPHERE,
        description="sphere: sum of squares of every numeric parameter; branin: x1, x2; "
        "hartmann3: x1..x3 in [0, 1]; hartmann6: x1..x6 in [0, 1]; rosenbrock: every numeric parameter in order; "
        "two objectives, reported as f1 and f2 (both min): zdt1: x1, x2, ... in [0, 1]; binh_korn: x1 in [0, 5], x2 in [0, 3]",
    )
    iterations: int = Field(20, ge=1, description="reports per trial")
    decay: float = Field(1.0, ge=0, description="how far above its final value the curve starts")
    noise: float = Field(0.0, ge=0, description="standard deviation of noise added to each report")
    sleep_s: float = Field(0.0, ge=0, description="seconds to sleep per iteration (simulated work)")
    fail_at: int | None = Field(
        None, ge=1, description="raise at this iteration (for trying failure handling)"
    )


from raytuner.spec.torch_options import (  # noqa: E402 - after Model's users above
    CnnClassifierTrainable,
    MlpClassifierTrainable,
    MlpRegressorTrainable,
    OptimizerName,
)

BuiltinTrainable = Annotated[
    AnalyticTrainable | MlpClassifierTrainable | MlpRegressorTrainable | CnnClassifierTrainable,
    Field(discriminator="builtin"),
]


from raytuner.spec.command_options import CommandTrainable  # noqa: E402

OBJECT_PREFIX = "<object "  # how spec.yaml names a trainable given as a Python object


def object_label(obj: Any) -> str:
    """The readable stand-in for a trainable object in the resolved spec: ``<object mod.name>``."""
    return f"{OBJECT_PREFIX}{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}>"


def _function_target(value: Any) -> str | Callable[..., Any]:
    """``module:name``, or (from the Python API) the function or Trainable class itself."""
    if isinstance(value, str):
        if value.startswith(OBJECT_PREFIX):
            raise ValueError(
                f"the trainable {value} was a Python object given to raytuner.run(); it cannot be imported "
                "by name: resume or extend the experiment from Python, passing the object again "
                "(raytuner.open(...).resume(trainable=...))"
            )
        if not re.match(FUNCTION_PATTERN, value):
            raise PydanticCustomError(
                "string_pattern_mismatch", "String should match pattern '{pattern}'", {"pattern": FUNCTION_PATTERN}
            )
        return value
    if callable(value):
        return value  # type: ignore[no-any-return]
    raise PydanticCustomError("string_type", "Input should be a valid string")


def _function_text(value: str | Callable[..., Any]) -> str:
    return value if isinstance(value, str) else object_label(value)


FunctionTarget = Annotated[
    str | Callable[..., Any],
    PlainValidator(_function_target),
    PlainSerializer(_function_text, return_type=str, when_used="json"),
    WithJsonSchema(
        {"type": "string", "pattern": FUNCTION_PATTERN, "description": "module path and name, e.g. mypkg.train:train"}
    ),
]


class FunctionTrainable(Model):
    """A Ray Tune function or Trainable class, by ``package.module:name`` or (from Python) the object."""

    function: FunctionTarget


class TrainableKind(str, Enum):
    """The keys that say what a trainable is; exactly one appears in ``trainable``."""

    BUILTIN = "builtin"
    FUNCTION = "function"
    COMMAND = "command"


def _trainable_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        present = [kind.value for kind in TrainableKind if kind.value in value]
        return present[0] if len(present) == 1 else None
    for kind in TrainableKind:
        if hasattr(value, kind.value):
            return kind.value
    return None


Trainable = Annotated[
    Annotated[BuiltinTrainable, Tag(TrainableKind.BUILTIN.value)]
    | Annotated[FunctionTrainable, Tag(TrainableKind.FUNCTION.value)]
    | Annotated[CommandTrainable, Tag(TrainableKind.COMMAND.value)],
    Discriminator(
        _trainable_tag,
        custom_error_type="trainable_kind",
        custom_error_message="expected exactly one of the keys builtin, function or command",
    ),
]


# ---------------------------------------------------------------------------- search


class WarmStartValue(str, Enum):
    """Which value of an earlier trial a warm-started searcher learns."""

    LAST = "last"
    BEST = "best"


class WarmStart(Model):
    """An earlier experiment whose finished trials a searcher learns from before it suggests."""

    experiment: str = Field(
        min_length=1, description="the earlier experiment: its name under storage, or its folder (a path)"
    )
    value: WarmStartValue = Field(
        WarmStartValue.LAST,
        description="each earlier trial's last value of the metric (what a searcher is told when a trial ends) "
        "or its best",
    )


class SearchBase(Model):
    num_samples: int = Field(16, ge=1, le=1_000_000, description="trials to run (grid: repeats of the grid)")
    max_concurrent: int | None = Field(None, ge=1, description="trials running at once (default: as resources allow)")
    seed: int | None = Field(None, ge=0, description="seed for reproducible sampling")
    time_budget_s: float | None = Field(None, gt=0, description="stop starting trials after this many seconds")
    points_to_evaluate: list[dict[str, Any]] = Field(
        default_factory=list, description="configurations to try first (full or partial: the rest is sampled)"
    )
    warm_start: WarmStart | None = Field(
        None, description="learn from an earlier experiment's finished trials before the first suggestion"
    )


class RandomSearch(SearchBase):
    algorithm: Literal[Algorithm.RANDOM]


class GridSearch(SearchBase):
    algorithm: Literal[Algorithm.GRID]
    num_samples: int = Field(1, ge=1, le=1_000_000, description="repeats of the whole grid")


class HyperOptSearch(SearchBase):
    algorithm: Literal[Algorithm.HYPEROPT]
    n_initial_points: int = Field(10, ge=1, description="random trials before TPE takes over")
    gamma: float = Field(0.25, gt=0, lt=1, description="TPE's quantile of good trials")


# The algorithm when ``search.algorithm`` is not given: ``auto``, which picks per problem
# (:mod:`raytuner.search.auto`, docs/search-benchmark.md); random search instead for a PBT/PB2
# population (they refuse model-based searchers), for a space with ``grid`` nodes (random search
# enumerates them; a model would treat them as plain choices) and for a space of constants only
# (nothing for a model to search).
DEFAULT_ALGORITHM = Algorithm.AUTO


def default_algorithm(scheduler: Any, space: Any) -> Algorithm:
    """The algorithm a spec without ``search.algorithm`` gets (raw YAML values of its keys)."""
    from raytuner.space.model import Op

    kind = scheduler.get("type") if isinstance(scheduler, dict) else getattr(scheduler, "type", None)
    ops = _operators(space, {op.value for op in Op} - {Op.CONSTANT.value})
    population = getattr(kind, "value", kind) in (SchedulerType.PBT.value, SchedulerType.PB2.value)
    return Algorithm.RANDOM if population or not ops or Op.GRID.value in ops else DEFAULT_ALGORITHM


def _operators(value: Any, known: set[str]) -> set[str]:
    """The space-language operators (other than ``constant``) used in a raw space."""
    if isinstance(value, dict):
        if len(value) == 1 and "constant" in value:
            return set()
        here = {key for key in value if key in known} if len(value) == 1 else set()
        return here.union(*(_operators(inner, known) for inner in value.values()))
    if isinstance(value, list):
        return set().union(*(_operators(inner, known) for inner in value))
    return set()


def _search_tag(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("algorithm", DEFAULT_ALGORITHM.value))
    return str(getattr(value, "algorithm", DEFAULT_ALGORITHM).value)


class OptunaTpeSearch(SearchBase):
    """Optuna's TPE: multivariate, grouped by branch in conditional spaces, constant liar in parallel."""

    algorithm: Literal[Algorithm.OPTUNA_TPE] = Algorithm.OPTUNA_TPE
    n_startup_trials: int = Field(10, ge=0, description="random trials before TPE takes over")
    n_ei_candidates: int = Field(24, ge=1, description="candidates drawn per suggestion to pick the best from")
    multivariate: bool = Field(True, description="model parameters jointly (grouped by branch) rather than one by one")
    constant_liar: bool = Field(True, description="treat running trials as bad so parallel trials spread out")


class CmaEsSearch(SearchBase):
    """Optuna's CMA-ES over the numeric parameters (choices are drawn at random)."""

    algorithm: Literal[Algorithm.CMAES]
    n_startup_trials: int = Field(1, ge=0, description="random trials before CMA-ES takes over")
    sigma0: float | None = Field(None, gt=0, description="initial step size (default: 1/6 of the range)")
    popsize: int | None = Field(None, ge=2, description="population per generation (default: 4 + 3 ln(dimensions))")
    with_margin: bool = Field(False, description="CMA-ES with margin, for integer parameters")


class GpSearch(SearchBase):
    """Optuna's Gaussian-process Bayesian optimization (needs torch and scipy)."""

    algorithm: Literal[Algorithm.GP]
    n_startup_trials: int = Field(10, ge=0, description="random trials before the GP takes over")
    deterministic_objective: bool = Field(False, description="the metric has no noise: fit the GP without noise")


class Nsga2Search(SearchBase):
    """Optuna's NSGA-II genetic algorithm."""

    algorithm: Literal[Algorithm.NSGA2]
    population_size: int = Field(50, ge=2, description="trials per generation")
    mutation_prob: float | None = Field(
        None, ge=0, le=1, description="chance to mutate each parameter (default: 1 / number of parameters)"
    )
    crossover_prob: float = Field(0.9, ge=0, le=1, description="chance a child comes from crossover")
    swapping_prob: float = Field(0.5, ge=0, le=1, description="chance to take each parameter from the other parent")


class NevergradDeSearch(SearchBase):
    """Nevergrad's differential evolution."""

    algorithm: Literal[Algorithm.NEVERGRAD_DE]
    popsize: int | None = Field(
        None, ge=4, description="population size (default: Nevergrad's, the largest of 30, workers and dimensions)"
    )


class BohbSearch(SearchBase):
    """BOHB: a TPE model of the largest budget with enough results, run with scheduler: hyperband."""

    algorithm: Literal[Algorithm.BOHB]
    min_points_in_model: int | None = Field(
        None, ge=1, description="results a budget needs before its model is used (default: parameters + 1)"
    )
    random_fraction: float = Field(1 / 3, ge=0, le=1, description="share of configurations drawn at random")
    n_ei_candidates: int = Field(24, ge=1, description="candidates drawn per suggestion to pick the best from")


class AutoSearch(SearchBase):
    """The searcher picked for the problem, switched during the run when it stops paying (raytuner.search.auto)."""

    algorithm: Literal[Algorithm.AUTO] = Algorithm.AUTO
    suggest_share: float = Field(
        0.1,
        gt=0,
        le=1,
        description="switch from gp to optuna_tpe once a suggestion takes more than this share of a trial's time",
    )
    gp_trials: int = Field(
        100, ge=1, description="switch from gp to optuna_tpe once it has learned from this many trials"
    )


SearchSpec = Annotated[
    Annotated[RandomSearch, Tag(Algorithm.RANDOM.value)]
    | Annotated[GridSearch, Tag(Algorithm.GRID.value)]
    | Annotated[HyperOptSearch, Tag(Algorithm.HYPEROPT.value)]
    | Annotated[OptunaTpeSearch, Tag(Algorithm.OPTUNA_TPE.value)]
    | Annotated[CmaEsSearch, Tag(Algorithm.CMAES.value)]
    | Annotated[GpSearch, Tag(Algorithm.GP.value)]
    | Annotated[Nsga2Search, Tag(Algorithm.NSGA2.value)]
    | Annotated[NevergradDeSearch, Tag(Algorithm.NEVERGRAD_DE.value)]
    | Annotated[BohbSearch, Tag(Algorithm.BOHB.value)]
    | Annotated[AutoSearch, Tag(Algorithm.AUTO.value)],
    Discriminator(_search_tag),
]


# ---------------------------------------------------------------------------- schedulers


class FifoScheduler(Model):
    type: Literal[SchedulerType.FIFO] = SchedulerType.FIFO


class AshaScheduler(Model):
    type: Literal[SchedulerType.ASHA]
    time_attr: str = Field("training_iteration", description="the result key that measures progress")
    max_t: float = Field(100, gt=0, description="no trial runs past this much time_attr")
    grace_period: float = Field(1, gt=0, description="no trial is stopped before this much time_attr")
    reduction_factor: float = Field(4, gt=1, description="keep 1/reduction_factor of trials at each rung")
    brackets: int = Field(1, ge=1, description="number of brackets (1 is ASHA as published)")

    @model_validator(mode="after")
    def _grace_within_max(self) -> AshaScheduler:
        if self.grace_period > self.max_t:
            raise ValueError(
                f"grace_period must be <= max_t, found grace_period={self.grace_period:g} > max_t={self.max_t:g}"
            )
        return self


class HyperbandScheduler(Model):
    type: Literal[SchedulerType.HYPERBAND]
    time_attr: str = "training_iteration"
    max_t: float = Field(81, gt=0)
    reduction_factor: float = Field(3, gt=1)


class MedianScheduler(Model):
    type: Literal[SchedulerType.MEDIAN]
    time_attr: str = "training_iteration"
    grace_period: float = Field(1, ge=0, description="no trial is stopped before this much time_attr")
    min_samples_required: int = Field(3, ge=1, description="trials needed to compute a median")
    min_time_slice: float | None = Field(
        None,
        ge=0,
        description="pause a trial to let others catch up after this much time_attr while too few trials "
        "have reported (null: never; a paused trial that cannot checkpoint restarts from scratch)",
    )
    hard_stop: bool = Field(True, description="stop (true) or pause (false) trials below the median")


class PbtScheduler(Model):
    """Population-based training: exploit the best trials' checkpoints, explore their configs."""

    type: Literal[SchedulerType.PBT]
    time_attr: str = Field("training_iteration", description="the result key that measures progress")
    perturbation_interval: float = Field(
        4, gt=0, description="exploit/explore every this much time_attr; a multiple of checkpoint.every"
    )
    burn_in_period: float = Field(0, ge=0, description="no perturbation before this much time_attr")
    hyperparam_mutations: dict[str, Any] = Field(
        description="what to explore, in the space language: distributions, or lists of values"
    )
    quantile_fraction: float = Field(
        0.25, ge=0, le=0.5, description="the bottom fraction copies the top fraction"
    )
    resample_probability: float = Field(
        0.25, ge=0, le=1, description="chance to resample a value instead of perturbing it"
    )
    perturbation_factors: tuple[float, float] = Field(
        (1.2, 0.8), description="factors a continuous value is multiplied by when perturbed"
    )
    synch: bool = Field(False, description="perturb the whole population at once (synchronous PBT)")


class Pb2Scheduler(Model):
    """PB2: PBT whose explore step is a GP bandit over bounded continuous hyperparameters."""

    type: Literal[SchedulerType.PB2]
    time_attr: str = "training_iteration"
    perturbation_interval: float = Field(4, gt=0)
    hyperparam_bounds: dict[str, tuple[float, float]] = Field(
        description="continuous hyperparameters to explore: name -> [low, high]"
    )
    quantile_fraction: float = Field(0.25, ge=0, le=0.5)
    synch: bool = False

    @model_validator(mode="after")
    def _bounds_ordered(self) -> Pb2Scheduler:
        for name, (low, high) in self.hyperparam_bounds.items():
            if low >= high:
                raise ValueError(f"hyperparam_bounds.{name}: low must be below high, found [{low:g}, {high:g}]")
        return self


SchedulerSpec = Annotated[
    FifoScheduler | AshaScheduler | HyperbandScheduler | MedianScheduler | PbtScheduler | Pb2Scheduler,
    Field(discriminator="type"),
]


# ---------------------------------------------------------------------------- the rest


class Resources(Model):
    cpu: float = Field(1, ge=0, description="CPUs per trial")
    gpu: float = Field(0, ge=0, description="GPUs per trial; fractions below 1 share a device")
    custom: dict[str, float] = Field(default_factory=dict, description="custom Ray resources per trial")

    @model_validator(mode="after")
    def _whole_gpus_above_one(self) -> Resources:
        if self.gpu > 1 and not float(self.gpu).is_integer():
            raise ValueError(f"gpu above 1 must be a whole number, found {self.gpu:g}")
        for name, amount in self.custom.items():
            if amount < 0:
                raise ValueError(f"custom resource {name!r} must be >= 0, found {amount:g}")
        return self


class Threshold(Model):
    at_least: float | None = None
    at_most: float | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Threshold:
        if (self.at_least is None) == (self.at_most is None):
            raise ValueError("give exactly one of at_least or at_most")
        return self


class StopSpec(Model):
    iterations: int | None = Field(None, ge=1, description="stop a trial after this many reports")
    time_s: float | None = Field(None, gt=0, description="stop a trial after this many seconds")
    metrics: dict[str, Threshold] = Field(
        default_factory=dict, description="stop a trial once a metric reaches a threshold"
    )


class CheckpointScore(Model):
    """The metric a trial's checkpoints are ranked by (``checkpoint.score``)."""

    metric: MetricName = Field(description="a metric the trial reports with its checkpoints")
    mode: Mode | None = Field(
        None, description="min or max; default: the spec's mode for that metric (it must then be one of the spec's metrics)"
    )


class CheckpointSpec(Model):
    every: int = Field(0, ge=0, description="checkpoint every N iterations (0: never)")
    keep: int | None = Field(
        2, ge=1, description="checkpoints kept per trial (null: all): the last ones, or with score the best ones, "
        "plus always the latest"
    )
    score: CheckpointScore | None = Field(
        None,
        description="keep each trial's best checkpoints by this metric instead of its last ones: a metric name "
        "(mode from the spec's) or {metric, mode}",
    )

    @field_validator("score", mode="before")
    @classmethod
    def _metric_name(cls, value: Any) -> Any:
        return {"metric": value} if isinstance(value, str) else value


class FailureSpec(Model):
    max_retries: int = Field(0, ge=-1, description="retries of a failed trial (-1: forever)")
    fail_fast: bool = Field(False, description="stop the whole experiment at the first trial error")
    trial_timeout_s: float | None = Field(
        None,
        gt=0,
        description="fail a running trial that reports nothing for this many seconds (a hung trial); "
        "it is retried like any failure",
    )
    max_failed_trials: Annotated[int, Field(ge=0)] | Annotated[float, Field(gt=0, lt=1)] | None = Field(
        None,
        description="end the run failed (exit code 1) once more trials than this have failed, after their retries: "
        "a count (0: at the first failure) or a fraction of the experiment's trials, 0 < x < 1 (0.5: more than "
        "half of them); default: no limit, and a run that ends with failed trials exits with 3",
    )

    @field_validator("max_failed_trials", mode="before")
    @classmethod
    def _count_or_fraction(cls, value: Any) -> Any:
        if value is None:
            return value
        count = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        fraction = isinstance(value, float) and 0 < value < 1
        if not (count or fraction):
            raise ValueError(
                f"expected a number of trials (an integer, 0 or more) or a fraction of the trials "
                f"(a number between 0 and 1, exclusive), found {value!r}"
            )
        return value


class WandbMode(str, Enum):
    ONLINE = "online"
    OFFLINE = "offline"
    DISABLED = "disabled"


class MlflowSpec(Model):
    """Where the mlflow logger writes: one MLflow run per trial, its config as params, every report as metrics."""

    tracking_uri: str | None = Field(
        None, description="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else file:<experiment folder>/mlruns)"
    )
    experiment_name: str | None = Field(None, description="MLflow experiment (default: the spec's name)")


class WandbSpec(Model):
    """Where the wandb logger writes: one W&B run per trial, its files in ``<experiment folder>/wandb``."""

    project: str | None = Field(None, description="W&B project (default: WANDB_PROJECT, else the spec's name)")
    group: str | None = Field(None, description="W&B group (default: the experiment folder's name)")
    mode: WandbMode | None = Field(
        None,
        description="online, offline (files only; wandb sync uploads them later) or disabled "
        "(default: WANDB_MODE, else online)",
    )


class ExecutionSpec(Model):
    backend: Backend = Field(
        Backend.RAY,
        description="ray: trials in Ray actors (a private local Ray, or the cluster of --address); inline: trials "
        "in threads of the raytuner process, no Ray started (short trials, debugging; fifo, asha and median "
        "schedulers, CPU only)",
    )
    reuse_actors: bool = Field(True, description="reuse Ray actors between trials (fast for short trials)")
    loggers: list[Logger] = Field(
        default_factory=list,
        description="Ray Tune per-trial logger files (csv, json, tensorboard) and trackers (mlflow, wandb)",
    )
    mlflow: MlflowSpec | None = Field(None, description="settings of the mlflow logger")
    wandb: WandbSpec | None = Field(None, description="settings of the wandb logger")
    pending_warning_s: float | None = Field(
        60,
        gt=0,
        description="explain a trial that has waited this long for resources while none of the run's trials "
        "runs (again each time its wait doubles); null: never",
    )

    @model_validator(mode="after")
    def _trackers_usable(self) -> ExecutionSpec:
        from importlib.util import find_spec

        for logger, (module, extra) in TRACKER_PACKAGES.items():
            if getattr(self, logger.value) is not None and logger not in self.loggers:
                raise ValueError(f"{logger.value}: settings given, but loggers does not include {logger.value!r}")
            if logger in self.loggers and find_spec(module) is None:
                raise ValueError(f"loggers: {logger.value} needs the {module} package: pip install 'raytuner[{extra}]'")
        return self


class Spec(Model):
    """One experiment: what to train, over which space, how to search and stop."""

    name: str = Field(pattern=NAME_PATTERN, description="experiment name (its folder under storage)")
    description: str | None = None
    trainable: Trainable
    # Stored under other names so that ``metric`` and ``mode`` stay the primary objective's
    # str and Mode for all code; the YAML keys (aliases) take one metric or a list of them.
    model_config = ConfigDict(serialize_by_alias=True)
    metric_names: MetricName | list[MetricName] = Field(
        alias="metric",
        description="the reported metric to optimize, or a list of 2 or more distinct metrics to tune for "
        "all at once (multi-objective: the result is a Pareto front; the first is the primary one)",
    )
    modes: Mode | list[Mode] = Field(
        alias="mode",
        description="min or max; with several metrics, one mode for all of them or a list with one mode per metric",
    )
    space: dict[str, Any] = Field(default_factory=dict, description="the search space")
    space_preset: OptimizerName | None = Field(
        None,
        description="built-in torch workloads: start from the recommended space for this optimizer "
        "(lr, optimizer parameters, weight_decay, dropout, batch_size); keys in space replace its keys",
    )
    search: SearchSpec = Field(
        default_factory=lambda: AutoSearch(),
        description="how to search (default algorithm: auto; random with pbt/pb2, grid nodes or only constants)",
    )
    scheduler: SchedulerSpec = Field(default_factory=FifoScheduler)
    resources: Resources = Field(default_factory=Resources)
    stop: StopSpec = Field(default_factory=StopSpec)
    checkpoint: CheckpointSpec = Field(default_factory=CheckpointSpec)
    failure: FailureSpec = Field(default_factory=FailureSpec)
    execution: ExecutionSpec = Field(default_factory=ExecutionSpec)
    storage: str = Field(
        "runs",
        min_length=1,
        description="where experiment folders go: a local or shared folder, or object storage (s3://bucket/prefix, gs://...)",
    )

    @model_validator(mode="before")
    @classmethod
    def _fill_algorithm(cls, data: Any) -> Any:
        """A ``search`` without ``algorithm`` gets :func:`default_algorithm` for this spec."""
        if not isinstance(data, dict):
            return data
        search = data.get("search", {})
        if not isinstance(search, dict) or "algorithm" in search:
            return data
        chosen = default_algorithm(data.get("scheduler"), data.get("space"))
        return {**data, "search": {**search, "algorithm": chosen.value}}

    @field_validator("metric_names", mode="before")
    @classmethod
    def _metric_shape(cls, value: Any) -> Any:
        names = value if isinstance(value, list) else [value]
        if not all(isinstance(name, str) and name for name in names):
            raise ValueError(
                f"expected a metric name (a string of at least 1 character) or a list of them, found {value!r}"
            )
        return value

    @field_validator("modes", mode="before")
    @classmethod
    def _mode_shape(cls, value: Any) -> Any:
        modes = value if isinstance(value, list) else [value]
        if not all(getattr(mode, "value", mode) in ("min", "max") for mode in modes):
            raise ValueError(f"expected 'min' or 'max' (or a list of them, one per metric), found {value!r}")
        return value

    @field_validator("metric_names")
    @classmethod
    def _distinct_metrics(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list):
            if len(value) < 2:
                raise ValueError(
                    f"a list of metrics needs at least 2 names (a single metric is a string), found a list of "
                    f"{len(value)}: {value}"
                )
            repeated = sorted({name for name in value if value.count(name) > 1})
            if repeated:
                raise ValueError(f"each metric can appear once, found {', '.join(repeated)} more than once")
        return value

    @field_validator("modes")
    @classmethod
    def _one_mode_per_metric(cls, value: Mode | list[Mode], info: ValidationInfo) -> Mode | list[Mode]:
        names = info.data.get("metric_names")
        if not isinstance(value, list) or names is None:
            return value
        count = len(names) if isinstance(names, list) else 1
        if len(value) != count:
            raise ValueError(
                f"metric names {count} metric{'s' if count > 1 else ''} but mode lists {len(value)} "
                f"mode{'s' if len(value) > 1 else ''}; give one mode per metric (or a single mode for all)"
            )
        return value

    @property
    def objectives(self) -> tuple[Objective, ...]:
        """Every metric to optimize with its mode, the primary one first."""
        names = [self.metric_names] if isinstance(self.metric_names, str) else self.metric_names
        modes = self.modes if isinstance(self.modes, list) else [self.modes] * len(names)
        return tuple(Objective(name, mode) for name, mode in zip(names, modes, strict=True))

    @property
    def multi_objective(self) -> bool:
        """Whether ``metric`` names several objectives (a Pareto front rather than one best)."""
        return isinstance(self.metric_names, list)

    @property
    def metric(self) -> str:
        """The primary (first) metric: the one Ray Tune, schedulers and single-metric tools see."""
        return self.objectives[0].metric

    @property
    def mode(self) -> Mode:
        """The primary (first) metric's mode."""
        return self.objectives[0].mode

    @property
    def checkpoint_objective(self) -> Objective:
        """What ranks a trial's checkpoints: ``checkpoint.score``, its mode from the spec's
        metric of that name when not given; without ``score``, the primary metric."""
        score = self.checkpoint.score
        if score is None:
            return self.objectives[0]
        if score.mode is not None:
            return Objective(score.metric, score.mode)
        same = [o for o in self.objectives if o.metric == score.metric]
        return same[0] if same else Objective(score.metric, self.mode)
