"""One run's context: what a backend needs to run an experiment's trials, and the backends.

The runner makes the folder, the tables and ``status.json``, then hands a :class:`RunContext`
to the backend the spec names (:func:`raytuner.execution.backends.backend_for`): Ray actors
(:mod:`.ray_backend`) or threads of this process (:mod:`.inline_backend`). Both build the same
parts (:func:`run_parts`) and answer the same small interface (:class:`RunBackend`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from raytuner.execution.callbacks import Bookkeeper
    from raytuner.execution.events import Listener
    from raytuner.execution.run_record import StatusFile
    from raytuner.execution.stopper import SpecStopper
    from raytuner.results.folder import Folder
    from raytuner.results.records import ExperimentBook
    from raytuner.results.remote import Mirror
    from raytuner.results.store import ResultsStore
    from raytuner.spec.loader import Experiment
    from raytuner.spec.models import Spec
    from raytuner.workloads import TrainableBuild


@dataclass(frozen=True)
class RunOptions:
    """How to run (not what: that is the spec)."""

    address: str | None = None
    verbose: bool = False
    num_cpus: int | None = None
    num_gpus: int | None = None


@dataclass(frozen=True)
class ResumeOptions:
    retry_errored: bool = False


@dataclass(frozen=True)
class RunContext:
    """Everything one run of an experiment works with, made once by the runner.

    Attributes:
        experiment: the validated experiment (its spec carries the search seed).
        options: how to run: a cluster, CPUs and GPUs of a private Ray, Ray's logs.
        listener: where the run's events go (the live view, JSON lines, nothing).
        folder: the experiment folder (for object storage, its local working copy).
        book: the trials' records in memory.
        store: the Parquet tables.
        status: ``status.json`` and the experiment table.
        bucket: the experiment on object storage that ``folder`` mirrors (None: a local run);
            read once, when the run starts.
        mirror: the copier of ``folder`` to ``bucket`` (None: a local run).
        resume: how to go on from a saved run (None: a new run).
    """

    experiment: Experiment
    options: RunOptions
    listener: Listener
    folder: Path
    book: ExperimentBook
    store: ResultsStore
    status: StatusFile
    bucket: Folder | None
    mirror: Mirror | None
    resume: ResumeOptions | None

    @property
    def spec(self) -> Spec:
        return self.experiment.spec

    @property
    def fresh(self) -> bool:
        """A new run (not a resume or an extension): a refusal before any trial leaves no folder."""
        return self.resume is None

    @property
    def location(self) -> str:
        """Where the experiment is: its folder, or its URI on object storage."""
        return self.bucket.uri if self.bucket is not None else str(self.folder)


@dataclass(frozen=True)
class RunParts:
    """What both backends drive the trials with, built alike for either."""

    scheduler: Any  # a Ray Tune TrialScheduler
    build: TrainableBuild
    stopper: SpecStopper
    bookkeeper: Bookkeeper


def run_length(spec: Spec) -> int | None:
    """The reports a trial makes when nothing ends it early: ``stop.iterations``, or a built-in
    workload's own length (``iterations``, ``max_epochs``), whichever is smaller. A scheduler's
    STOP on that report ended nothing early (the median rule, which has no ``max_t``, says STOP
    on a last report too)."""
    from raytuner.spec.models import AnalyticTrainable
    from raytuner.spec.torch_options import TorchTrainableBase

    lengths = [spec.stop.iterations] if spec.stop.iterations is not None else []
    if isinstance(spec.trainable, AnalyticTrainable):
        lengths.append(spec.trainable.iterations)
    elif isinstance(spec.trainable, TorchTrainableBase):
        lengths.append(spec.trainable.max_epochs)
    return min(lengths, default=None)


def run_parts(run: RunContext, total_trials: int) -> RunParts:
    """The scheduler, the trainable's build, the stopper and the Bookkeeper of ``run``."""
    from raytuner.execution.callbacks import Bookkeeper
    from raytuner.execution.retention import Retention
    from raytuner.execution.stopper import FailureLimit, SpecStopper
    from raytuner.schedulers import create_scheduler
    from raytuner.workloads import build_trainable

    spec = run.spec
    scheduler = create_scheduler(spec.scheduler, spec.metric, spec.mode.value)
    build = build_trainable(run.experiment)
    stopper = SpecStopper(spec.stop, run.book, run.experiment.source, FailureLimit.of(spec.failure, total_trials))
    max_t = getattr(spec.scheduler, "max_t", None)
    horizons = [(spec.scheduler.time_attr, max_t)] if max_t is not None else []  # type: ignore[union-attr]
    length = run_length(spec)
    if length is not None:
        horizons.append(("training_iteration", length))
    bookkeeper = Bookkeeper(
        run.book,
        run.store,
        run.listener,
        stopper,
        horizons,
        getattr(scheduler, "drain", None),
        getattr(scheduler, "early_stopped", None),
        trial_timeout_s=spec.failure.trial_timeout_s,
        pending_warning_s=spec.execution.pending_warning_s,
        mirror=run.mirror,
        retention=Retention.of(spec),
    )
    return RunParts(scheduler, build, stopper, bookkeeper)


class RunBackend(Protocol):
    """Where an experiment's trials run (``execution.backend``)."""

    def check(self, options: RunOptions, *, new_folder: bool) -> None:
        """Refuse ``options`` this backend cannot honour, before the run writes anything;
        ``new_folder``: before a new run's folder is made.

        Raises:
            UsageError: the options ask for what this backend cannot do.
        """

    def fit(self, run: RunContext) -> int:
        """Run the trials to the end of the search (or an interrupt); return the trials planned."""

    def hint(self, run: RunContext) -> str | None:
        """A suggestion for the next run, once this one ended (None: nothing to suggest)."""
