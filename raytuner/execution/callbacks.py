"""The one Ray Tune callback raytuner adds: it keeps the books and feeds everyone else.

It records every trial and report in the :class:`ExperimentBook`, streams reports to the
Parquet store, records as failed a trial stopped at a report that could not count for the spec's
metric (:class:`~raytuner.execution.stopper.SpecStopper` judges reports), and turns Ray's
hooks into :class:`Event` objects for the progress display.
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ray.tune import Callback

from raytuner.execution import ray_state
from raytuner.execution.events import Event, EventKind, Listener
from raytuner.execution.pending import PendingWatch
from raytuner.execution.retention import DeferredDrops, Retention, relist, write_listing
from raytuner.execution.stopper import SpecStopper
from raytuner.results.records import ExperimentBook, Kept, TrialRecord, TrialStatus, is_number, metrics_of
from raytuner.results.remote import Mirror
from raytuner.results.store import ResultsStore

PROGRESS_EVERY_S = 0.5
PROCESS_DIED = "The actor is dead because its worker process has died."
# Ray's logger integrations its usage tag counts by name (ray.air._internal.usage._count_callbacks)
RAY_LOGGER_INTEGRATIONS = frozenset({"WandbLoggerCallback", "MLflowLoggerCallback", "CometLoggerCallback", "AimLoggerCallback"})


class Bookkeeper(Callback):
    def __init__(
        self,
        book: ExperimentBook,
        store: ResultsStore,
        listener: Listener,
        stopper: SpecStopper,
        horizons: Sequence[tuple[str, float]] = (),
        decisions: Callable[[], list[Any]] | None = None,
        early_stopped: set[str] | None = None,
        trial_timeout_s: float | None = None,
        pending_warning_s: float | None = None,
        mirror: Mirror | None = None,
        retention: Retention | None = None,
    ) -> None:
        self.book = book
        self.retention = retention  # the spec's checkpoint policy: each trial's best and latest are recorded
        self.drops: DeferredDrops | None = None  # Ray backend: raytuner deletes the checkpoints the policy drops
        self.store = store
        self.mirror = mirror  # the upload to object storage, when the experiment lives there
        self.listener = listener
        self.stopper = stopper
        self.decisions = decisions  # the PBT scheduler's drain(), if any
        self.search_decisions: Callable[[], list[Any]] | None = None  # search.algorithm auto's drain()
        self.early_stopped = early_stopped if early_stopped is not None else set()  # the scheduler's STOPs
        self.horizons = tuple(horizons)  # (attribute, value): a trial stopped at one has run its course
        self._last_progress = 0.0
        self.trial_timeout_s = trial_timeout_s  # the hung-trial watchdog's limit (failure.trial_timeout_s)
        self._last_seen: dict[str, float] = {}  # trial id -> monotonic time of its start or last report
        self._running: dict[str, Any] = {}  # trial id -> Ray's trial, from its start to its end
        self._timed_out: dict[str, str] = {}  # trial id -> why the watchdog killed it
        self._resources: dict[tuple[tuple[str, float], ...], dict[str, float]] = {}
        self.pending_watch = PendingWatch(pending_warning_s) if pending_warning_s else None
        self._restored_checked = False  # the records against Ray's restored trials, at the first step
        self._staging: Path | None = None  # where Ray writes its experiment state before copying it over
        self.restore_watch: ray_state.RestoreWatch | None = None  # a resume's: did Ray restore its saved state?
        _count_callbacks_by_name()

    def __getstate__(self) -> dict[str, Any]:
        # Ray pickles the run config (tuner.pkl) for Tuner.restore; a listener may hold a
        # terminal or stream, and a restored run gets a new one anyway.
        from raytuner.execution.events import NullListener

        state = self.__dict__.copy()
        state["listener"] = NullListener()
        state["mirror"] = None  # a thread and its lock
        state["restore_watch"] = None
        state["search_decisions"] = None  # the searcher's own method: Ray saves the searcher apart
        return state

    def get_state(self) -> None:
        """Ray is saving its experiment state (which trials ended, the searcher's memory) and
        copies it to the experiment folder once this returns: raytuner's tables are written
        first, and uploaded when the experiment lives on object storage. A driver killed at any
        moment so leaves tables at least as new as Ray's saved state; otherwise a trial Ray had
        saved as finished could come back from a resume with its last reports missing (they
        were waiting for the periodic flush) or not at all. Nothing is kept in Ray's file."""
        self.store.flush()
        if self.mirror is not None:
            self.mirror.round()
        elif self._staging is not None:  # Ray's files are whole in staging now; its copy can be cut short
            ray_state.keep(self._staging, self.store.folder)
        if self.drops is not None:
            self.drops.saved()
        return None

    # ------------------------------------------------------------------ helpers

    def _emit(self, kind: EventKind, **data: Any) -> None:
        self.listener.handle(Event(kind, data), self.book)

    def note_search_decisions(self) -> None:
        """Record and announce ``auto``'s decisions taken since the last call (none without auto)."""
        if self.search_decisions is None:
            return
        taken = self.search_decisions()
        if not taken:
            return
        from raytuner.results.search_decisions import record

        for decision in record(self.store.folder, taken):
            self._emit(EventKind.SEARCH_DECISION, **decision.to_json())

    def _record(self, trial: Any) -> TrialRecord:
        record = self.book.trials.get(trial.trial_id)
        if record is None:
            record = TrialRecord(trial.trial_id, dict(trial.config))
            self.book.trials[trial.trial_id] = record
        return record

    # ------------------------------------------------------------------ Ray hooks

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        record = self._record(trial)
        record.config = dict(trial.config)  # PBT changes a trial's config between runs
        record.status = TrialStatus.RUNNING
        if record.started_at is None:
            record.started_at = time.time()
        record.trial_dir = trial.path
        try:
            resources = dict(trial.placement_group_factory.required_resources)
        except Exception:  # noqa: BLE001 - resources are informative only
            resources = {}
        # trials mostly ask for the same: one dict shared by all that do (read only)
        record.resources = self._resources.setdefault(tuple(sorted(resources.items())), resources)
        self._last_seen[trial.trial_id] = time.monotonic()
        self._running[trial.trial_id] = trial
        self.store.touch()
        self._emit(EventKind.TRIAL_STARTED, trial_id=trial.trial_id, config=record.config)

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any) -> None:
        record = self._record(trial)
        self._last_seen[trial.trial_id] = time.monotonic()
        if trial.trial_id in self.stopper.faults:
            _drop_bad_metrics(result, self.book)
        metrics = metrics_of(result)
        record.iterations = int(result.get("training_iteration", record.iterations + 1) or 0)
        record.time_total_s = float(result.get("time_total_s", 0.0) or 0.0)
        record.node_ip = result.get("node_ip", record.node_ip)
        self.book.reports += 1
        self.store.add_result(trial.trial_id, result, metrics)
        if record.observe(self.book.metric, self.book.sign, metrics, record.iterations) and self.book.consider(record):
            best = self.book.best
            assert best is not None
            self._emit(
                EventKind.NEW_BEST,
                trial_id=best.trial_id,
                value=best.value,
                iteration=best.iteration,
                config=best.config,
            )

    def _ended_early(self, trial: Any) -> bool:
        """The scheduler ended ``trial`` before its horizon (ASHA's max_t...): a STOP decision on
        its result, or HyperBand halting it from another trial's (known only once it ended)."""
        return trial.trial_id in self.early_stopped and not self._at_horizon(trial.last_result or {})

    def _at_horizon(self, result: dict[str, Any]) -> bool:
        for attr, end in self.horizons:
            value = result.get(attr)
            if isinstance(value, (int, float)) and value >= end:
                return True
        return False

    def on_checkpoint(self, iteration: int, trials: list[Any], trial: Any, checkpoint: Any, **info: Any) -> None:
        if self.retention is not None:
            self._kept(trial, checkpoint)
        # A restored trial resumes after its checkpoint: every report up to it must be on disk
        # (and the trials table names it before Ray or the inline backend drops an older one).
        self.store.flush()

    def _kept(self, trial: Any, checkpoint: Any) -> None:
        """Follow the trial's kept checkpoints (the one just made came with its last report); on
        Ray, hand the ones dropped to :attr:`drops`."""
        assert self.retention is not None
        result = trial.last_result or {}
        path = str(getattr(checkpoint, "path", checkpoint)).rstrip("/")
        name = f"{posixpath.basename(str(trial.path).rstrip('/'))}/{posixpath.basename(path)}"
        iteration, time_total_s = int(result.get("training_iteration") or 0), float(result.get("time_total_s") or 0.0)
        new = Kept(name, iteration, self.retention.value(result), time_total_s)
        record = self._record(trial)
        before = record.checkpoints
        kept = self.retention.add(before, new)
        if self.drops is not None:  # the trial's list first: a folder is deleted once no list names it
            folder = posixpath.dirname(path)
            write_listing(checkpoint.filesystem, folder, kept)
            staying = {entry.name for entry in kept}
            for entry in before:
                if entry.name not in staying:  # in the same trial folder as the new one
                    self.drops.drop(checkpoint.filesystem, posixpath.join(folder, posixpath.basename(entry.name)))
        self._follow(record, kept)

    def _follow(self, record: TrialRecord, kept: list[Kept]) -> None:
        assert self.retention is not None
        record.checkpoints = kept
        best = self.retention.best([entry.value for entry in kept])
        record.checkpoint_best = kept[best] if best is not None else None

    def _relist(self, trials: list[Any]) -> None:
        """A resumed Ray run's first step: each trial's kept checkpoints from the list in its
        folder (``trials.parquet`` names only the best and the latest), and the folders the list
        no longer names deleted (:func:`~raytuner.execution.retention.relist`)."""
        assert self.retention is not None
        restored = {str(t.checkpoint.path).rstrip("/") for t in trials if t.checkpoint is not None}
        for trial in trials:
            if not trial.path:
                continue
            folder = str(trial.path).rstrip("/")
            latest = None
            if trial.checkpoint is not None and posixpath.dirname(str(trial.checkpoint.path).rstrip("/")) == folder:
                metrics = trial.latest_checkpoint_result.metrics or {}
                name = f"{posixpath.basename(folder)}/{posixpath.basename(str(trial.checkpoint.path).rstrip('/'))}"
                iteration, time_total_s = int(metrics.get("training_iteration") or 0), float(metrics.get("time_total_s") or 0.0)
                latest = Kept(name, iteration, self.retention.value(metrics), time_total_s)
            try:
                kept = relist(trial.storage.storage_filesystem, folder, trial.storage.current_checkpoint_index, latest, restored)
            except (OSError, ValueError, TypeError, IndexError):  # a list unreadable, a storage that failed: leftovers stay
                continue
            record = self.book.trials.get(trial.trial_id)
            if kept is not None and record is not None:
                self._follow(record, kept)
                self.store.touch()

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        fault = self.stopper.faults.pop(trial.trial_id, None)
        if fault is not None:  # stopped at a report that could not count: the trial failed
            self._failed(trial, fault)
            return
        record = self._record(trial)
        record.early_stopped = record.early_stopped or self._ended_early(trial)
        finished_early = record.early_stopped
        record.status = TrialStatus.STOPPED if finished_early else TrialStatus.COMPLETED
        record.ended_at = time.time()
        self.store.touch()
        self._last_seen.pop(trial.trial_id, None)  # watched while running only
        self._running.pop(trial.trial_id, None)
        _release_metric_history(trial)
        kind = EventKind.TRIAL_STOPPED if finished_early else EventKind.TRIAL_COMPLETED
        self._emit(kind, trial_id=trial.trial_id, iterations=record.iterations, best=record.best)

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        record = self._record(trial)
        record.num_failures += 1
        fault = self.stopper.faults.pop(trial.trial_id, None)
        record.error = self._timed_out.pop(trial.trial_id, None) or fault or _error_message(trial)
        record.status = TrialStatus.PENDING
        self._running.pop(trial.trial_id, None)
        self.store.touch()
        self._emit(EventKind.TRIAL_RETRY, trial_id=trial.trial_id, error=record.error, failures=record.num_failures)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        fault = self.stopper.faults.pop(trial.trial_id, None)
        timed_out = self._timed_out.pop(trial.trial_id, None)
        self._failed(trial, timed_out or fault or _error_message(trial))

    def _failed(self, trial: Any, error: str) -> None:
        record = self._record(trial)
        record.num_failures += 1
        record.status = TrialStatus.ERROR
        record.error = error
        record.ended_at = time.time()
        self.book.withdraw(record)
        self.store.touch()
        self._last_seen.pop(trial.trial_id, None)
        self._running.pop(trial.trial_id, None)
        self._emit(EventKind.TRIAL_ERROR, trial_id=trial.trial_id, error=record.error)

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        if self._staging is None and trials:
            self._staging = Path(trials[0].storage.experiment_driver_staging_path)
        if self._restored_checked:
            return
        self._restored_checked = True
        watch = self.restore_watch
        if watch is not None and watch.failure is not None:  # Ray would start over beside its trials: stop first
            raise ray_state.RestoreFailed(watch.failure) from watch.error
        # A resumed run's first step: Ray's saved state can be older than the tables (its save
        # came after raytuner's flush, and a kill or a full disk came in between). A trial the
        # tables hold finished but Ray restored unfinished runs again from its last checkpoint:
        # its record is unfinished too, or the tables would let go of it and its restart would
        # start an empty record in its place (its row clobbered, the trial counted twice).
        unfinished = {"PENDING", "RUNNING", "PAUSED"}
        for trial in trials:
            record = self.book.trials.get(trial.trial_id)
            if record is not None and record.status.finished and str(trial.status) in unfinished:
                record.status, record.ended_at, record.error = TrialStatus.PENDING, None, None
                self.store.touch()
        self._reconcile(trials)
        if self.drops is not None and self.retention is not None and self.book.trials:  # resumed on Ray
            self._relist(trials)

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        if self._running:
            self._ended_with_the_run()
        if self.trial_timeout_s is not None:
            self._watch(trials, self.trial_timeout_s)
        if self.pending_watch is not None:  # explain trials left pending (execution.pending_warning_s)
            for event in self.pending_watch.check(trials):
                self.listener.handle(event, self.book)
        self.note_search_decisions()
        if self.decisions is not None:
            for decision in self.decisions():
                self.store.add_decision(decision)
                self._emit(
                    EventKind.PBT_EXPLOIT,
                    trial_id=decision.trial_id,
                    source_trial_id=decision.source_trial_id,
                    step=decision.step,
                    new_config=decision.new_config,
                )
        self.store.maybe_flush()
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_EVERY_S:
            self._last_progress = now
            self.book.pending = sum(1 for t in trials if t.status == "PENDING")
            self._emit(EventKind.PROGRESS)

    def _ended_with_the_run(self) -> None:
        """Label ``stopped`` the trials Ray ended with the whole run (the failure limit, the time
        budget, an abort): it marks them TERMINATED in the step that decides it, with no callback,
        and they were left ``running`` in a run that ended. A Ctrl-C's stop comes after the last
        step: those trials stay unfinished (the runner labels them ``paused``)."""
        for trial_id, trial in list(self._running.items()):
            if str(trial.status) != "TERMINATED":
                continue
            del self._running[trial_id]
            record = self.book.trials.get(trial_id)
            if record is None or record.status.finished:
                continue
            record.early_stopped = True
            record.status = TrialStatus.STOPPED
            record.ended_at = time.time()
            self.store.touch()
            self._last_seen.pop(trial_id, None)
            self._emit(EventKind.TRIAL_STOPPED, trial_id=trial_id, iterations=record.iterations, best=record.best)

    def _watch(self, trials: list[Any], limit: float) -> None:
        """Fail RUNNING trials silent for longer than ``limit``: a Stopper only acts on a
        report, so a hung trial is ended by killing its actor. Ray then handles it as any
        dead trial process (retried from its last checkpoint while retries remain), and
        the reason recorded is this one rather than Ray's "actor died"."""
        import ray

        now = time.monotonic()
        for trial in trials:
            seen = self._last_seen.get(trial.trial_id)
            if str(trial.status) != "RUNNING" or seen is None or trial.trial_id in self._timed_out:
                continue
            if now - seen < limit:
                continue
            actor = getattr(getattr(trial, "temporary_state", None), "ray_actor", None)
            if actor is None:
                continue
            self._timed_out[trial.trial_id] = f"no report for {limit:g} s (trial_timeout_s); the trial was killed"
            ray.kill(actor, no_restart=True)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        if self.drops is not None:
            self.drops.ended()
        self.note_search_decisions()
        if self.decisions is not None:
            for decision in self.decisions():
                self.store.add_decision(decision)
        self.book.pending = sum(1 for t in trials if t.status == "PENDING")

    def _reconcile(self, trials: list[Any]) -> None:
        """Take Ray's word for trials whose end raytuner did not see (a resumed run's
        trials that finished before the driver died, after the trials table was last saved).

        Done once, with the trials as Ray restored them: at the end of an interrupted run Ray
        marks the trials it stops ``TERMINATED`` too, and they were recorded ``completed``
        after 5 of 20 iterations (the runner marks them ``paused`` instead).
        """
        ended = {"TERMINATED": TrialStatus.COMPLETED, "ERROR": TrialStatus.ERROR}
        for trial in trials:
            record = self.book.trials.get(trial.trial_id)
            status = ended.get(str(trial.status))
            if record is None or status is None or record.status.finished:
                continue
            record.early_stopped = record.early_stopped or self._ended_early(trial)
            # a trial Ray ended because the whole run stopped (the failure limit) was cut short
            cut = record.early_stopped or self.stopper.stop_all()
            record.status = TrialStatus.STOPPED if status is TrialStatus.COMPLETED and cut else status
            record.iterations = int(trial.last_result.get("training_iteration", record.iterations) or 0)
            record.ended_at = record.ended_at or time.time()
            if record.status is TrialStatus.ERROR:
                self.book.withdraw(record)  # the tables may have made it the best before it failed
            self.store.touch()
        # A trial started after Ray's last save of its state was lost with the driver: Ray
        # does not know it, and the restored searcher suggests its configuration again under
        # a new id. Its partial record and reports are dropped rather than left "running".
        known = {trial.trial_id for trial in trials}
        for trial_id, record in list(self.book.trials.items()):
            if trial_id not in known and not record.status.finished:
                del self.book.trials[trial_id]
                self.store.forget(trial_id)


def _drop_bad_metrics(result: dict[str, Any], book: ExperimentBook) -> None:
    """Take the spec's metrics that are neither numbers nor mappings out of a failed trial's last report, in place
    (Ray lets callbacks edit it): the scheduler and searcher then read it at the trial's end as a
    report without a value, and the metric's column in the results stays numeric. The value is
    in the trial's error."""
    for name in [name for name, _ in book.objectives] or [book.metric]:
        if name in result and not is_number(result[name]) and not isinstance(result[name], Mapping):
            del result[name]  # a mapping stays: its numbers are columns of their own


def _release_metric_history(trial: Any) -> None:
    """Drop what Ray keeps of a finished trial's metrics for its own analysis API.

    Ray Tune keeps, for every trial of the experiment, two running windows (deques) and six
    summaries (min, max, avg, last, last-5-avg, last-10-avg) per reported metric, and a JSON
    copy of them in each trial's cached state, which its controller holds for the experiment
    state: measured with tracemalloc over 1,500 trials, about a third of the driver's Python
    growth per trial (ray-project/ray issue 64231). They serve ``ExperimentAnalysis``'s
    best-trial queries, which raytuner does not use (its own records and tables hold every
    report), and no result comes after a trial's end; errored trials keep theirs (they may be
    retried).
    """
    metadata = getattr(trial, "run_metadata", None)
    if metadata is None:
        return
    # each assignment goes through its __setattr__, which drops the cached JSON too
    if getattr(metadata, "metric_n_steps", None):
        metadata.metric_n_steps = {}
    if getattr(metadata, "metric_analysis", None):
        metadata.metric_analysis = {}


def _count_callbacks_by_name() -> None:
    """Make Ray's callback usage tag count by class name instead of importing every integration.

    When a run has callbacks, Ray Tune's telemetry (``ray.air._internal.usage.tag_callbacks``)
    imports its MLflow, W&B, Comet and Aim integrations to ``isinstance``-check them: with mlflow
    and wandb installed that costs several seconds per run (the largest share of a short
    experiment's driver time in benchmarks/overhead.py). The tag recorded is the same: Ray's own
    callbacks by class name, others as CustomLoggerCallback or CustomCallback.
    """
    import json

    from ray._common.usage.usage_lib import TagKey, record_extra_usage_tag
    from ray.air._internal import usage

    if getattr(usage.tag_callbacks, "raytuner", False):
        return

    def tag_callbacks(callbacks: list[Any] | None) -> bool:
        from ray.tune.logger import LoggerCallback
        from ray.tune.utils.callback import DEFAULT_CALLBACK_CLASSES

        if not callbacks:
            return False
        builtin = {cls.__name__ for cls in DEFAULT_CALLBACK_CLASSES} | RAY_LOGGER_INTEGRATIONS
        counts: dict[str, int] = {}
        for callback in callbacks:
            if not isinstance(callback, Callback):
                continue
            name = type(callback).__name__
            if name not in builtin or not type(callback).__module__.startswith("ray."):
                name = "CustomLoggerCallback" if isinstance(callback, LoggerCallback) else "CustomCallback"
            counts[name] = counts.get(name, 0) + 1
        if counts:
            record_extra_usage_tag(TagKey.AIR_CALLBACKS, json.dumps(counts))
        return True

    tag_callbacks.raytuner = True  # type: ignore[attr-defined]
    usage.tag_callbacks = tag_callbacks


def _error_message(trial: Any) -> str:
    """The last line of the trial's error (its exception), or a generic note."""
    path = getattr(trial, "error_file", None)
    if path and Path(path).is_file():
        lines = [line.strip() for line in Path(path).read_text(errors="replace").splitlines() if line.strip()]
        for line in reversed(lines):
            if line.startswith(PROCESS_DIED):  # Ray's long note on a dead worker: keep the facts
                detail = line[len(PROCESS_DIED) :].split(" Some common causes", 1)[0].strip(" .")
                return f"the trial's process died ({detail}): a crash, or a kill (the out-of-memory killer?)"[:2000]
            if not line.startswith(("File ", "^", "~")):
                from raytuner.execution.gpus import out_of_memory_message

                return (out_of_memory_message(line) or line)[:2000]
    return "trial failed (no error message was recorded)"
