"""Running one experiment: its folder, its run context, the backend, and the records that outlive it.

The backend that runs the trials (Ray, inline) is chosen once per run, here, from the spec
(:func:`~raytuner.execution.backends.backend_for`)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
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
from raytuner.execution.backends import backend_for
from raytuner.execution.context import ResumeOptions, RunBackend, RunContext, RunOptions
from raytuner.execution.environment import write_environment
from raytuner.execution.events import Event, EventKind, Listener
from raytuner.execution.full_storage import full_message, nothing_kept_message, storage_checked, strerror
from raytuner.execution.run_record import RunState, StatusFile, display, finish_data
from raytuner.results import layout, remote
from raytuner.results.catalog import read_status
from raytuner.results.driver_lock import driven, driving
from raytuner.results.records import ExperimentBook, TrialRecord, TrialStatus, read_records
from raytuner.results.schema import config_columns
from raytuner.results.store import ResultsStore
from raytuner.spec.loader import Experiment
from raytuner.spec.models import Mode


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
    where: str | None = None  # the folder, or its URI on object storage (None: read from the folder)

    @property
    def location(self) -> str:
        """Where the experiment is: its folder, or its URI on object storage."""
        return self.where if self.where is not None else display(self.folder)

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
    from raytuner.workloads.torch.split_record import write_test_split

    experiment = _seeded(experiment)
    spec = experiment.spec
    backend = backend_for(spec)
    backend.check(options, new_folder=True)
    where = Location(experiment.source, None, "storage")
    remote_copy: remote.Folder | None = None
    if remote.is_uri(spec.storage):  # Ray writes to the bucket; raytuner's files go there through a working copy
        bucket = remote.Folder.parse(spec.storage)  # its credentials go to the environment, never to a record
        experiment = dataclasses.replace(experiment, spec=spec.model_copy(update={"storage": bucket.uri}))
        remote.check_writable(bucket, where)
        remote_copy = bucket.child(remote.new_name(bucket, spec.name))
        folder = remote.fresh_working_copy(remote_copy)
    else:
        root = layout.storage_root(spec.storage)
        layout.check_writable(root, where)
        folder = layout.make_experiment_dir(root, spec.name)
    with driving(folder):  # taken before the folder is an experiment: no resume can start on it
        started = time.time()
        several = tuple((o.metric, o.mode.value) for o in spec.objectives) if spec.multi_objective else ()
        book = ExperimentBook(spec.metric, 1.0 if spec.mode is Mode.MAX else -1.0, objectives=several)
        try:
            with storage_checked(folder):
                (folder / layout.SPEC).write_text(yaml.safe_dump(experiment.resolved(), sort_keys=False))
                write_environment(folder, experiment)
                write_test_split(folder, experiment)
                store = ResultsStore(folder, book, config_columns(experiment.space, *_mutation_spaces(experiment)))
                status = StatusFile(folder, experiment, book, started)
                run = RunContext(
                    experiment, options, listener, folder, book, store, status, bucket=remote_copy, mirror=None, resume=None
                )
                return _run(run, backend)
        except StorageFullError as exc:
            if (folder / layout.STATUS).is_file():
                raise  # the run started: resume goes on from what it wrote
            # full before the run's start was recorded (a spec.yaml cut short, no status.json): nothing to resume
            shutil.rmtree(folder, ignore_errors=True)
            if remote_copy is not None:
                remote.remove(remote_copy)
            raise StorageFullError(nothing_kept_message(folder, exc)) from exc


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

    backend = backend_for(experiment.spec)
    backend.check(options, new_folder=False)
    with storage_checked(folder):
        book = rebuild_book(folder, experiment)
        store = ResultsStore(folder, book, config_columns(experiment.space, *_mutation_spaces(experiment)))
        started = float(read_status(folder).get("started_at") or time.time())
        status = StatusFile(folder, experiment, book, started)
        bucket = remote.remote_of(folder)
        run = RunContext(experiment, options, listener, folder, book, store, status, bucket=bucket, mirror=None, resume=resume)
        return _run(run, backend)


def _run(run: RunContext, backend: RunBackend) -> RunSummary:
    """Run ``run``'s trials on ``backend``, then record how the run ended (or, for a new run
    refused before any trial reported, leave nothing)."""
    experiment, folder, book, store, status, bucket = run.experiment, run.folder, run.book, run.store, run.status, run.bucket
    fresh = run.fresh
    status.start()
    mirror = remote.Mirror(folder, bucket) if bucket is not None else None
    run = dataclasses.replace(run, mirror=mirror)
    if mirror is not None:
        mirror.sync()  # the bucket has the spec and status before Ray starts
        mirror.start()
    state, error, total = RunState.FAILED, None, 0
    refused: RaytunerError | None = None
    try:
        total = backend.fit(run)
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
        backend.hint(run),
        run.location,
    )
    run.listener.handle(Event(EventKind.EXPERIMENT_FINISHED, finish_data(summary)), book)
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


def _mutation_spaces(experiment: Experiment) -> list[Any]:
    mutations = getattr(experiment.spec.scheduler, "hyperparam_mutations", None)
    if not mutations:
        return []
    from raytuner.schedulers import parse_mutations

    return [parse_mutations(mutations)]
