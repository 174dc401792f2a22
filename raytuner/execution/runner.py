"""Running one experiment: folder, Ray session, Tuner, and the records that outlive it."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import secrets
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from raytuner.errors import (
    ExitCode,
    ExperimentError,
    Location,
    RaytunerError,
    SearchStalledError,
    StorageFullError,
    is_storage_full,
)
from raytuner.execution import ray_state
from raytuner.execution.environment import write_environment
from raytuner.execution.events import Event, EventKind, Listener
from raytuner.execution.full_storage import full_message, storage_checked, strerror
from raytuner.execution.run_record import RunState, StatusFile, display, finish_data, started_event
from raytuner.results import layout, remote
from raytuner.results.catalog import read_status
from raytuner.results.driver_lock import driven, driving
from raytuner.results.records import ExperimentBook, TrialRecord, TrialStatus, read_records
from raytuner.results.schema import config_columns
from raytuner.results.store import ResultsStore
from raytuner.spec.loader import Experiment
from raytuner.spec.models import Backend, Mode


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
class RunSummary:
    name: str
    folder: Path
    state: RunState
    book: ExperimentBook
    duration_s: float
    total_trials: int
    error: str | None = None
    hint: str | None = None  # a suggestion for the next run (trials this short would run faster inline)

    @property
    def location(self) -> str:
        """Where the experiment is: its folder, or its URI on object storage."""
        return display(self.folder)

    @property
    def failed(self) -> int:
        """The experiment's trials that ended in error (earlier runs' too, after resume or extend)."""
        return self.book.failed

    @property
    def exit_code(self) -> ExitCode:
        """The command's exit status: interrupted, failed, completed with failed trials, or OK."""
        if self.state is RunState.INTERRUPTED:
            return ExitCode.INTERRUPTED
        if self.state is RunState.FAILED:
            return ExitCode.FAILURE
        return ExitCode.TRIALS_FAILED if self.failed else ExitCode.OK

    @property
    def errors_at(self) -> str:
        """The command that lists the failed trials and their errors (the trials table's ``error`` column)."""
        import shlex

        return f"raytuner show {shlex.quote(self.location)} --where 'status == \"error\"' --columns trial_id,error"

    @functools.cached_property
    def trials(self) -> dict[str, TrialRecord]:
        """Every trial of the experiment as its trials table holds them when first asked (the
        book lets go of finished trials once the table holds them)."""
        path = self.folder / layout.TRIALS
        return read_records(path) if path.is_file() else {}


def run_experiment(experiment: Experiment, options: RunOptions, listener: Listener) -> RunSummary:
    """Run ``experiment`` to its end and return what happened.

    The experiment folder gets the resolved spec and environment first, then Parquet as
    results arrive. A trainable that never reports the spec's metric stops the run, removes
    the folder (nothing useful was recorded) and raises MetricNotReportedError; once a trial
    has reported it, a report that cannot count fails only its trial.
    """
    from raytuner.execution.session import RayKind, check_reachable, cluster_address, ray_kind
    from raytuner.workloads.torch.split_record import write_test_split

    experiment = _seeded(experiment)
    spec = experiment.spec
    joining = cluster_address(options.address)
    inline = _check_inline_options(experiment, options)
    if joining and not inline and ray_kind(options.address) is RayKind.JOINED:  # a cluster that cannot be joined leaves no folder
        check_reachable(joining, verbose=options.verbose)
    where = Location(experiment.source, None, "storage")
    if remote.is_uri(spec.storage):  # Ray writes to the bucket; raytuner's files go there through a working copy
        bucket = remote.Folder.parse(spec.storage)  # its credentials go to the environment, never to a record
        experiment = dataclasses.replace(experiment, spec=spec.model_copy(update={"storage": bucket.uri}))
        remote.check_writable(bucket, where)
        folder = remote.fresh_working_copy(bucket.child(remote.new_name(bucket, spec.name)))
    else:
        root = layout.storage_root(spec.storage)
        layout.check_writable(root, where)
        folder = layout.make_experiment_dir(root, spec.name)
    with driving(folder):  # taken before the folder is an experiment: no resume can start on it
        started = time.time()
        several = tuple((o.metric, o.mode.value) for o in spec.objectives) if spec.multi_objective else ()
        book = ExperimentBook(spec.metric, 1.0 if spec.mode is Mode.MAX else -1.0, objectives=several)
        with storage_checked(folder):
            (folder / layout.SPEC).write_text(yaml.safe_dump(experiment.resolved(), sort_keys=False))
            write_environment(folder, experiment)
            write_test_split(folder, experiment)
            store = ResultsStore(folder, book, config_columns(experiment.space, *_mutation_spaces(experiment)))
            status = StatusFile(folder, experiment, book, started)
            return _run(experiment, options, listener, folder, book, store, status, None, fresh=True)


def _check_inline_options(experiment: Experiment, options: RunOptions) -> bool:
    """Whether the experiment runs inline; if so, refuse the options that ask for a Ray."""
    if experiment.spec.execution.backend is not Backend.INLINE:
        return False
    from raytuner.execution.inline import check_options

    check_options(options)
    return True


def _seeded(experiment: Experiment) -> Experiment:
    """``experiment`` with a search seed: the spec's, or one drawn now. It is written to the
    resolved spec (so ``resume`` and ``extend`` go on with it), ``environment.json`` and the
    experiment table: a run without a seed can be repeated exactly by setting the one drawn."""
    if experiment.spec.search.seed is not None:
        return experiment
    search = experiment.spec.search.model_copy(update={"seed": secrets.randbelow(2**31)})
    return dataclasses.replace(experiment, spec=experiment.spec.model_copy(update={"search": search}))


@driven
def resume_experiment(
    folder: Path, options: RunOptions, listener: Listener, *, retry_errored: bool = False, trainable: Any = None
) -> RunSummary:
    """Continue an interrupted experiment where Ray's saved state left it.

    Finished trials are not run again; unfinished ones continue from their last checkpoint
    (or start over without one); with ``retry_errored`` failed trials start over. The
    Parquet tables keep everything recorded before and add what follows; a report repeated
    after a restore replaces the one it repeats. ``trainable``: the object a run from
    Python was given (its spec.yaml cannot name it).

    Raises:
        UsageError: another driver runs the experiment now (:mod:`raytuner.results.driver_lock`).
    """
    from raytuner.execution.revive import load_saved_experiment

    experiment = load_saved_experiment(folder, trainable)
    return _continue(folder, experiment, options, listener, ResumeOptions(retry_errored))


@driven
def extend_experiment(
    folder: Path, add: int, options: RunOptions, listener: Listener, *, trainable: Any = None
) -> RunSummary:
    """Run ``add`` more samples of a completed experiment, in its folder.

    The saved spec's ``search.num_samples`` grows by ``add``; Ray's restored searcher goes on
    from everything the earlier trials taught it (HyperOpt proposes from all of them). No
    earlier trial runs again and every earlier Parquet row stays.

    Raises:
        UsageError: the experiment is not completed (resume it first) or cannot take more trials, or
            another driver runs it now.
    """
    from raytuner.errors import UsageError
    from raytuner.execution.extension import widen_saved_spec
    from raytuner.execution.revive import load_saved_experiment

    state = read_status(folder).get("state")
    if state != RunState.COMPLETED.value:
        raise UsageError(f"{folder.name} is {state}, not completed: finish it with raytuner resume before extending it")
    experiment = widen_saved_spec(folder, load_saved_experiment(folder, trainable).base_dir, add, trainable)
    return _continue(folder, experiment, options, listener, ResumeOptions())


def _continue(
    folder: Path, experiment: Experiment, options: RunOptions, listener: Listener, resume: ResumeOptions
) -> RunSummary:
    from raytuner.execution.revive import rebuild_book

    _check_inline_options(experiment, options)
    with storage_checked(folder):
        book = rebuild_book(folder, experiment)
        store = ResultsStore(folder, book, config_columns(experiment.space, *_mutation_spaces(experiment)))
        started = float(read_status(folder).get("started_at") or time.time())
        status = StatusFile(folder, experiment, book, started)
        return _run(experiment, options, listener, folder, book, store, status, resume, fresh=False)


def _run(
    experiment: Experiment,
    options: RunOptions,
    listener: Listener,
    folder: Path,
    book: ExperimentBook,
    store: ResultsStore,
    status: StatusFile,
    resume: ResumeOptions | None,
    *,
    fresh: bool,
) -> RunSummary:
    status.write(RunState.RUNNING)
    bucket = remote.remote_of(folder)
    mirror = remote.Mirror(folder, bucket) if bucket is not None else None
    if mirror is not None:
        mirror.sync()  # the bucket has the spec and status before Ray starts
        mirror.start()
    state, error, total = RunState.FAILED, None, 0
    refused: RaytunerError | None = None
    try:
        total = _fit(experiment, options, listener, book, store, folder, resume, mirror)
        state, error = _outcome(experiment, book, total)
    except KeyboardInterrupt:
        state = RunState.INTERRUPTED
    except SearchStalledError as exc:  # what ran is kept, resumable
        state, error = RunState.INTERRUPTED, str(exc)
        raise
    except RaytunerError as exc:
        if exc.exit_code == ExitCode.BAD_INPUT and fresh:  # refused before any trial ran (e.g. resources): leave nothing
            refused = exc
        error = str(exc)  # status.json says why it failed
        raise
    except Exception as exc:  # noqa: BLE001 - Ray raises many kinds; record and report them
        error = f"{type(exc).__name__}: {exc}"
        if is_storage_full(exc):
            error = f"the storage is full ({strerror(exc)})"
            raise StorageFullError(full_message(folder, exc)) from exc
        raise ExperimentError(f"the experiment failed: {error}") from exc
    finally:
        if fresh and ((book.abort is not None and not book.reported()) or refused is not None):
            if mirror is not None and bucket is not None:
                mirror.stop()
                remote.remove(bucket)
            shutil.rmtree(folder, ignore_errors=True)
        else:
            with _sigint_deferred():  # a second Ctrl-C stopped Ray at once: still leave a resumable folder
                if state is not RunState.COMPLETED:  # interrupted, or failed with trials cut mid-run
                    _pause_running(book, store)
                _record_end(folder, store, status, state, error)
                if mirror is not None:
                    mirror.close()
    if book.abort is not None:
        raise book.abort
    summary = RunSummary(
        experiment.spec.name,
        folder,
        state,
        book,
        time.time() - status.started,
        total,
        error,
        _inline_hint(experiment, options, folder),
    )
    listener.handle(Event(EventKind.EXPERIMENT_FINISHED, finish_data(summary)), book)
    return summary


def _pause_running(book: ExperimentBook, store: ResultsStore) -> None:
    """The trials still ``running`` when a run ended without completing are ``paused``: resume
    goes on with them (an interrupt; inline's ``fail_fast``, which stops them mid-run)."""
    for record in book.trials.values():
        if record.status is TrialStatus.RUNNING:
            record.status = TrialStatus.PAUSED
            store.touch()


def _record_end(folder: Path, store: ResultsStore, status: StatusFile, state: RunState, error: str | None) -> None:
    """Compact the tables, then write the run's end to ``status.json``.

    Storage full: the tables stay as parts (``resume`` goes on from them), ``status.json``
    says the run failed and why, or the error raised says it could not be written either.
    """
    full: OSError | None = None
    try:
        store.finalize()
    except OSError as exc:
        if not is_storage_full(exc):
            raise
        full, state, error = exc, RunState.FAILED, f"the storage is full ({strerror(exc)})"
    try:
        status.write(state, error)
    except OSError as exc:
        if not is_storage_full(exc):
            raise
        said = (
            f"{layout.STATUS} says {state.value}"
            if status.written
            else f"{layout.STATUS} could not be written either (it still says running)"
        )
        raise StorageFullError(full_message(folder, full or exc, said)) from exc
    if full is not None:
        raise StorageFullError(full_message(folder, full)) from full


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold SIGINT back while the tables and status are written; re-raised after, if one came."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def _outcome(experiment: Experiment, book: ExperimentBook, total: int) -> tuple[RunState, str | None]:
    """How a run that returned ended: failed past ``failure.max_failed_trials`` (and why),
    interrupted before its end, or completed."""
    from raytuner.execution.stopper import FailureLimit

    limit = FailureLimit.of(experiment.spec.failure, total)
    if limit.exceeded(book.failed):
        return RunState.FAILED, limit.reason(book.failed)
    budgeted = experiment.spec.search.time_budget_s is not None
    return (RunState.INTERRUPTED if _unfinished(book, total, budgeted) else RunState.COMPLETED), None


def _unfinished(book: ExperimentBook, total: int, budgeted: bool) -> bool:
    """Ray returned before the experiment's end (Ctrl-C): trials left running or never started.

    Fewer trials than planned is normal only when a time budget ran out.
    """
    if any(not record.status.finished for record in book.trials.values()):
        return True
    return not budgeted and book.size < total


def _fit(
    experiment: Experiment,
    options: RunOptions,
    listener: Listener,
    book: ExperimentBook,
    store: ResultsStore,
    folder: Path,
    resume: ResumeOptions | None = None,
    mirror: remote.Mirror | None = None,
) -> int:
    from raytuner.execution.preflight import check_before_start, trial_resources
    from raytuner.execution.session import ray_session, tune_environment
    from raytuner.workloads.function import search_path

    spec = experiment.spec
    if spec.execution.backend is Backend.INLINE:
        from raytuner.execution.inline import fit_inline

        return fit_inline(experiment, options, listener, book, store, folder, resume, mirror)
    wanted = trial_resources(spec.resources.cpu, spec.resources.gpu, spec.resources.custom)
    if _starts_private_ray(options.address):
        check_before_start(wanted, options.num_cpus, options.num_gpus, experiment.source)
    with tune_environment(options.verbose), ray_session(
        options.address,
        verbose=options.verbose,
        python_path=search_path(experiment.base_dir),
        num_cpus=options.num_cpus,
        num_gpus=options.num_gpus,
    ) as session:
        import ray

        from raytuner.execution.session import leave_job_working_dir

        leave_job_working_dir(folder.parent)
        from ray import tune

        from raytuner.execution.devices import DeviceSetup, local_gpu_ids
        from raytuner.execution.extension import WidenedSearch
        from raytuner.execution.loggers import logger_callbacks
        from raytuner.execution.pending import awaited_node
        from raytuner.execution.preflight import check_placeable, local_single_node, preflight
        from raytuner.execution.retention import DeferredDrops
        from raytuner.execution.search_watch import TrialsFeed, WatchedSearch, watched
        from raytuner.search import create_search
        from raytuner.search.population import PopulationSearch

        nodes = ray.nodes()
        awaited = check_placeable(wanted, nodes, experiment.source, local=session.private)
        plan = create_search(experiment)
        spread = local_single_node(nodes, joined=not (session.private or session.reused))
        placement = preflight(
            wanted,
            nodes,
            max_concurrent=spec.search.max_concurrent,
            total_trials=plan.total_trials,
            spread=spread,
            requested_gpus=options.num_gpus if session.private else None,
        )
        scheduler, build, stopper, bookkeeper = run_parts(experiment, book, store, listener, mirror, plan.total_trials)
        bookkeeper.drops = DeferredDrops()  # Ray keeps every checkpoint: raytuner deletes those the spec drops
        widen = resume is not None and not isinstance(plan.searcher, PopulationSearch)  # a population has its size
        search = WidenedSearch(plan.searcher, plan.total_trials) if widen else watched(plan.searcher)
        feed = [TrialsFeed(search)] if isinstance(search, WatchedSearch) else []
        cluster = ray.cluster_resources()
        # no live node holds a trial yet; the autoscaler can start this node type (None: one does)
        awaits = None if awaited is None else awaited_node(wanted, awaited)
        told = plan.told if resume is None else 0  # a restored searcher already learned them
        started = started_event(experiment, folder, plan.total_trials, session.address, cluster, placement, awaits, told)
        listener.handle(started, book)
        resources: dict[str, Any] = {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu, **spec.resources.custom}
        devices = DeviceSetup.start(spec.resources.gpu, local_gpu_ids(int(placement.cluster_gpus)), spread)
        trainable = tune.with_resources(devices.wrap(build.trainable), resources)
        bucket = remote.remote_of(folder)
        run_config = tune.RunConfig(
            name=folder.name,
            storage_path=bucket.parent_uri if bucket is not None else str(folder.parent),
            verbose=1 if options.verbose else 0,
            stop=stopper,
            callbacks=[bookkeeper, *feed, *devices.callbacks(book), *logger_callbacks(spec, folder)],
            failure_config=tune.FailureConfig(max_failures=spec.failure.max_retries, fail_fast=spec.failure.fail_fast),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),  # see DeferredDrops
        )
        if resume is None:
            tuner = tune.Tuner(
                trainable,
                tune_config=tune.TuneConfig(
                    search_alg=search,
                    scheduler=scheduler,
                    num_samples=plan.total_trials,
                    reuse_actors=spec.execution.reuse_actors and build.reusable,
                    time_budget_s=spec.search.time_budget_s,
                ),
                run_config=run_config,
            )
        else:
            tuner = _restore(tune, folder, trainable, run_config, resume, bookkeeper, search)
        try:
            with _pending_trials(placement.trials_at_once):
                tuner.fit()
        finally:
            devices.close()
        if isinstance(search, WatchedSearch) and search.stalled is not None:
            raise SearchStalledError(f"{folder.name}: {search.stalled}")
        return plan.total_trials


def run_parts(
    experiment: Experiment,
    book: ExperimentBook,
    store: ResultsStore,
    listener: Listener,
    mirror: remote.Mirror | None,
    total_trials: int,
) -> tuple[Any, Any, Any, Any]:
    """The scheduler, the trainable's build, the stopper and the Bookkeeper: the same for both backends."""
    from raytuner.execution.callbacks import Bookkeeper
    from raytuner.execution.retention import Retention
    from raytuner.execution.stopper import FailureLimit, SpecStopper
    from raytuner.schedulers import create_scheduler
    from raytuner.workloads import build_trainable

    spec = experiment.spec
    scheduler = create_scheduler(spec.scheduler, spec.metric, spec.mode.value)
    build = build_trainable(experiment)
    stopper = SpecStopper(spec.stop, book, experiment.source, FailureLimit.of(spec.failure, total_trials))
    max_t = getattr(spec.scheduler, "max_t", None)
    horizon = (spec.scheduler.time_attr, max_t) if max_t is not None else None  # type: ignore[union-attr]
    bookkeeper = Bookkeeper(
        book,
        store,
        listener,
        stopper,
        horizon,
        getattr(scheduler, "drain", None),
        getattr(scheduler, "early_stopped", None),
        trial_timeout_s=spec.failure.trial_timeout_s,
        pending_warning_s=spec.execution.pending_warning_s,
        mirror=mirror,
        retention=Retention.of(spec),
    )
    return scheduler, build, stopper, bookkeeper


def _starts_private_ray(address: str | None) -> bool:
    """Whether :func:`ray_session` will start a Ray of this run's own (not join one, nor reuse
    the Ray already running in this process)."""
    from raytuner.execution.session import RayKind, ray_kind

    return ray_kind(address) is RayKind.PRIVATE


@contextlib.contextmanager
def _pending_trials(at_once: int) -> Iterator[None]:
    """Let Ray Tune start as many trials as can run at once.

    Ray Tune keeps one trial pending at a time for any searcher other than its own
    BasicVariantGenerator unless the searcher is wrapped in a ConcurrencyLimiter; with trials
    that each wait for an actor, that ran raytuner's trials one after another on a machine
    with room for several. TUNE_MAX_PENDING_TRIALS_PG (read when the Tuner starts) raises it
    to the number of trials the cluster can hold at once; a value the user set is kept.
    """
    if "TUNE_MAX_PENDING_TRIALS_PG" in os.environ:
        yield
        return
    os.environ["TUNE_MAX_PENDING_TRIALS_PG"] = str(max(1, at_once))
    try:
        yield
    finally:
        os.environ.pop("TUNE_MAX_PENDING_TRIALS_PG", None)


def _restore(
    tune: Any, folder: Path, trainable: Any, run_config: Any, resume: ResumeOptions, keeper: Any, search: Any
) -> Any:
    """Ray's Tuner.restore, with this run's callbacks and stopper instead of the pickled ones.

    Ray restores the searcher's and scheduler's state from the experiment folder; the run
    config it pickled holds the first run's bookkeeping, which must not be reused. The
    searcher is built again from the saved spec (Ray restores its state into it), so a spec
    widened by ``raytuner extend`` raises the sample count Ray saved.
    """
    bucket = remote.remote_of(folder)
    path = bucket.uri if bucket is not None else str(folder)
    if bucket is None:
        ray_state.repair(folder)  # a file Ray's copy left cut short (a full disk) gets its whole copy back
    if not tune.Tuner.can_restore(path):
        raise ExperimentError(
            f"{folder.name}: Ray saved no experiment state to resume from (the run stopped before its first "
            "save); start it again with raytuner run"
        )
    tuner = tune.Tuner.restore(
        path, trainable=trainable, resume_unfinished=True, restart_errored=resume.retry_errored
    )
    if resume.retry_errored:  # Ray starts each failed trial over as a new trial (a new id): the failed ones go
        for record in [r for r in keeper.book.trials.values() if r.status is TrialStatus.ERROR]:
            del keeper.book.trials[record.trial_id]
            keeper.store.forget(record.trial_id)
    internal = tuner._local_tuner
    internal._run_config = run_config
    internal._tune_config.search_alg = search
    scheduler = internal._tune_config.scheduler
    keeper.decisions = getattr(scheduler, "drain", None)
    keeper.early_stopped = getattr(scheduler, "early_stopped", keeper.early_stopped)
    return tuner


def _mutation_spaces(experiment: Experiment) -> list[Any]:
    mutations = getattr(experiment.spec.scheduler, "hyperparam_mutations", None)
    if not mutations:
        return []
    from raytuner.schedulers import parse_mutations

    return [parse_mutations(mutations)]


INLINE_HINT_TRIALS = 8  # finished trials before a run's trials say what they cost
INLINE_HINT_S = 2.0  # a median trial this short is mostly Ray's per-trial cost


def _inline_hint(experiment: Experiment, options: RunOptions, folder: Path) -> str | None:
    """Suggest ``--inline`` after a private-Ray run of short trials that could have run inline."""
    from raytuner.spec.checks import inline_obstacle

    spec = experiment.spec
    if spec.execution.backend is Backend.INLINE or options.address or options.num_gpus:
        return None
    if inline_obstacle(spec) is not None or not (folder / layout.TRIALS).is_file():
        return None
    import pyarrow.parquet as pq

    trials = pq.read_table(folder / layout.TRIALS, columns=["status", "time_total_s"]).to_pylist()
    ended = {status.value for status in TrialStatus if status.finished}
    times = sorted(t["time_total_s"] for t in trials if t["status"] in ended and (t["time_total_s"] or 0) > 0)
    if len(times) < INLINE_HINT_TRIALS:
        return None
    median = times[len(times) // 2]
    if median >= INLINE_HINT_S:
        return None
    return (
        f"trials took a median {median:.2g} s, less than Ray's cost per trial: raytuner run --inline runs them "
        "in this process (docs/spec.md, execution backends)"
    )


