"""Trials in threads of this process: Ray Tune's searchers, schedulers and report API, no actors.

``execution.backend: inline``. A Ray trial pays for its actor: a worker process that imports
Ray Tune (about 2 s here), and a round trip through Ray's controller for every report (3-7 ms
on 2 cores). For trials that take milliseconds, or while debugging a trainable (a breakpoint
stops the run, tracebacks are the trial's own), that is most of the run. Here each trial runs
in a thread of the raytuner process; ``ray.tune.report``, ``get_checkpoint`` and
``get_context`` reach a session of this module instead of Ray's (one per trial thread), and
each report goes through the same parts as on Ray, in Ray's order: the spec's stopper, the
scheduler (ASHA, median, FIFO: Ray's own classes), the searcher, then raytuner's
:class:`~raytuner.execution.callbacks.Bookkeeper` (tables, events). Nothing starts Ray.

What it leaves to the Ray backend, refused at validation (``spec/checks.py``): schedulers
that pause or clone trials (HyperBand, PBT, PB2), GPUs and custom resources (threads share
one process and its devices), Ray's per-trial loggers and trackers, ``trial_timeout_s`` (a
thread cannot be killed), joining a cluster.

Resume: the searcher's state, the scheduler and the unfinished trials are saved to
``inline-state.pkl`` at most every second while trials start and end, and at the end; each
trial lists its kept checkpoints in its folder (``checkpoints.json``). A resume runs the
unfinished trials again from their latest checkpoints; trials that started after the last
save are dropped with their reports and suggested again, as on Ray.
"""

from __future__ import annotations

import collections
import contextlib
import os
import queue
import shutil
import signal
import socket
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raytuner.errors import ExperimentError, SearchStalledError, is_storage_full
from raytuner.execution.inline_state import (  # noqa: F401 - STATE_FILE: where tests and docs look for it
    STATE_FILE,
    read_state,
    restore_searcher,
    searcher_state,
    trial_number,
    write_state,
)
from raytuner.execution.inline_trial import (  # InlineTrial, Resources: inline-state.pkl of earlier runs names them here
    _ROUTER,
    NODE_IP,
    InlineTrial,
    KeptFolder,
    Resources,
    TrialSession,
    TrialStopped,
    _Controller,
    routed_sessions,
)
from raytuner.execution.retention import CHECKPOINTS_FILE
from raytuner.results.store import write_json_atomic

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from raytuner.execution.callbacks import Bookkeeper
    from raytuner.execution.retention import Retention
    from raytuner.results.records import ExperimentBook, TrialRecord
    from raytuner.results.store import ResultsStore

TICK_S = 0.25
WAIT_ON_ERROR_S = 30.0  # after an error in the run itself, how long running trials get to reach a report
SAVE_EVERY_S = 1.0  # the state is saved at most this often while trials start and end (and at the end)
STOP = "STOP"  # ray.tune.schedulers.TrialScheduler.STOP


@dataclass
class InlineSetup:
    """The parts the runner builds for either backend."""

    searcher: Any
    scheduler: Any
    stopper: Any
    bookkeeper: Bookkeeper
    trainable: Any
    label: str
    total_trials: int
    at_once: int
    cpu: float
    max_retries: int
    fail_fast: bool
    retention: Retention
    time_budget_s: float | None


class InlineExecutor:
    """Runs the experiment's trials, ``at_once`` threads at a time, to the end of the search."""

    def __init__(self, setup: InlineSetup, folder: Path, book: ExperimentBook, store: ResultsStore) -> None:
        import inspect

        self.setup = setup
        self.folder = folder
        self.book = book
        self.store = store
        self.lock = threading.RLock()
        self.running: dict[str, InlineTrial] = {}
        self.retry: collections.deque[InlineTrial] = collections.deque()
        self.ended: queue.Queue[tuple[InlineTrial, str, str | None]] = queue.Queue()
        self.controller = _Controller(self.running)
        self.created = 0
        self.exhausted = False
        self.stopping: str | None = None  # why every trial stops now: interrupt, budget, abort, fail_fast
        self.failure: str | None = None
        self.full: BaseException | None = None  # the first write refused for want of space
        self.stalled: str | None = None  # why the search ended with trials left to start
        self.interrupted = False  # Ctrl-C
        self.resumed = False
        self.run_id = uuid.uuid4().hex[:5]
        self.hostname = socket.gethostname()
        self.is_class = inspect.isclass(setup.trainable)
        self._iteration = 0
        self._unsaved = False  # trials started or ended since the state was saved
        self._last_save = 0.0
        self.todo: queue.Queue[InlineTrial | None] = queue.Queue()  # trials for the worker threads
        self._workers: list[threading.Thread] = []
        self._ended: list[tuple[float, TrialRecord]] = []  # (monotonic time, record) of trials ended since
        # the tables were last written: the saved state carries them until the tables do
        self._started = time.monotonic()

    # ------------------------------------------------------------------ resume

    def restore(self, retry_errored: bool) -> None:
        """Go on from ``inline-state.pkl``: the searcher's memory, the scheduler, the unfinished trials.

        Trials that the tables show finished are not run again (they ended after the last
        save); trials that started after it are dropped with their reports, finished or not:
        the restored searcher suggests them again, under the same numbers.
        """
        self.resumed = True
        state = read_state(self.folder)
        restore_searcher(self.setup.searcher, state["searcher"])
        self.setup.scheduler = state["scheduler"]
        self.run_id = state["run_id"]
        self.created = state["created"]
        known = set()
        for record in state["ended"]:  # ended after the tables were last written
            current = self.book.trials.get(record.trial_id)
            if current is None or not current.status.finished:
                self.book.trials[record.trial_id] = record
                self.store.touch()
        for trial in state["trials"]:
            known.add(trial.trial_id)
            record = self.book.trials.get(trial.trial_id)
            if record is not None and record.status.finished:
                self._ended_unseen(record)
                continue
            trial.status, trial.stop_reason = "PENDING", None
            trial.checkpoints = _listed_checkpoints(Path(trial.local_path), trial.checkpoints)
            if record is not None:  # the books follow the list (the trials table names the best and latest only)
                self._follow(record, trial.checkpoints)
            self.retry.append(trial)
        for trial_id, record in list(self.book.trials.items()):
            started_after = trial_number(trial_id) >= self.created  # the restored searcher suggests it again
            if trial_id in known or (record.status.finished and not started_after):
                continue
            del self.book.trials[trial_id]
            self.store.forget(trial_id)
        if retry_errored:
            self._requeue_errored()

    def _follow(self, record: TrialRecord, kept: list[KeptFolder]) -> None:
        from raytuner.results.records import Kept

        record.checkpoints = [Kept(f"{Path(path).parent.name}/{Path(path).name}", it, v) for path, it, _, v in kept]
        best = self.setup.retention.best([entry.value for entry in record.checkpoints])
        record.checkpoint_best = record.checkpoints[best] if best is not None else None

    def _ended_unseen(self, record: TrialRecord) -> None:
        """Tell the restored searcher of a trial that ended after its state was saved: it still
        counts the trial running (a concurrency limit would keep its slot taken for good)."""
        from raytuner.results.records import TrialStatus

        result = {**record.last, "training_iteration": record.iterations, "done": True}
        self.setup.searcher.on_trial_complete(record.trial_id, result=result, error=record.status is TrialStatus.ERROR)

    def _requeue_errored(self) -> None:
        from raytuner.results.records import TrialStatus

        for record in self.book.trials.values():
            if record.status is not TrialStatus.ERROR:
                continue
            record.status, record.error, record.ended_at = TrialStatus.PENDING, None, None
            self.retry.append(self._new_trial(record.trial_id, dict(record.config)))

    def save_state(self, *, flush: bool = False) -> None:
        """Write the resumable state (at most every second while trials start and end: one
        rename per save costs about a millisecond here, a trial a few).

        The tables are written every few seconds (and with ``flush``, at the end); the records
        of trials that ended since are saved here, and a resume takes them over the tables'.
        """
        if flush:
            self.store.flush()
        self._ended = [(when, record) for when, record in self._ended if when >= self.store.last_flush]
        unfinished = [*self.running.values(), *self.retry]
        state = {
            "run_id": self.run_id,
            "created": self.created,
            "searcher": searcher_state(self.setup.searcher),
            "scheduler": self.setup.scheduler,
            "trials": unfinished,
            "ended": [record for _, record in self._ended],
        }
        write_state(self.folder, state)
        self._unsaved = False
        self._last_save = time.monotonic()

    # ------------------------------------------------------------------ the loop

    def run(self) -> None:
        """Run trials until the search is done.

        The first Ctrl-C stops every trial at its next report (they stay unfinished, for
        ``resume``) and starts no more; a second one stops at once. Either way the state is
        saved and KeyboardInterrupt raised for the runner.
        """
        with routed_sessions(), self._ctrl_c():
            try:
                self._loop()
            except KeyboardInterrupt:  # a second Ctrl-C: stop at once
                raise
            except BaseException:
                self._stop_all("error")  # let the trials end at their next report, not report into nothing
                self._wait_for_running(WAIT_ON_ERROR_S)
                raise
            finally:
                for _ in self._workers:
                    self.todo.put(None)
                with self.lock:
                    self.book.pending = len(self.retry)
                    self.save_state(flush=True)
        if self.full is not None:
            raise self.full
        if self.interrupted:
            raise KeyboardInterrupt
        if self.failure is not None:
            raise ExperimentError(self.failure)
        if self.stalled is not None:
            raise SearchStalledError(f"{self.folder.name}: {self.stalled}")

    @contextlib.contextmanager
    def _ctrl_c(self) -> Iterator[None]:
        """SIGINT as a request (a flag the loop reads), not an exception that could land
        between two steps of the bookkeeping; the second one raises at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def interrupt(signum: int, frame: Any) -> None:
            if self.interrupted:
                signal.signal(signal.SIGINT, signal.default_int_handler)
                raise KeyboardInterrupt
            self.interrupted = True
            self._stop_all("interrupt")

        previous = signal.signal(signal.SIGINT, interrupt)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _loop(self) -> None:
        bookkeeper = self.setup.bookkeeper
        if self.setup.stopper.stop_all():  # resumed past failure.max_failed_trials: start nothing
            self._stop_all("abort")
        while True:
            self._start_trials()
            if self._unsaved and time.monotonic() - self._last_save >= SAVE_EVERY_S:
                with self.lock:
                    self.save_state()
            if not self.running and (self.stopping is not None or (self.exhausted and not self.retry)):
                return
            self._end_arrived(TICK_S)
            with self.lock:
                self._iteration += 1
                bookkeeper.on_step_end(self._iteration, list(self.running.values()))
                if self.setup.stopper.stop_all():
                    self._stop_all("abort")
                budget = self.setup.time_budget_s
                if budget is not None and time.monotonic() - self._started >= budget:
                    self._stop_all("budget")

    def _stop_all(self, reason: str) -> None:
        if self.stopping is None:
            self.stopping = reason

    def _storage_full(self, exc: BaseException) -> None:
        """Stop every trial at its next report: the storage has no room for what they report."""
        if self.full is None:
            self.full = exc
        self._stop_all("storage")

    def _wait_for_running(self, limit_s: float) -> None:
        deadline = time.monotonic() + limit_s
        while self.running and time.monotonic() < deadline:
            self._end_arrived(TICK_S)

    def _end_arrived(self, wait_s: float) -> None:
        """Wait up to ``wait_s`` for a trial to end; then end it and every other that has."""
        try:
            item = self.ended.get(timeout=wait_s)
            while True:
                self._end(*item)
                item = self.ended.get_nowait()
        except queue.Empty:
            return

    def _start_trials(self) -> None:
        """Hand the worker threads the trials that fit, retried ones first."""
        setup = self.setup
        batch: list[InlineTrial] = []
        while len(self.running) + len(batch) < setup.at_once and self.stopping is None:
            if self.retry:
                batch.append(self.retry.popleft())
                continue
            if self.exhausted or self.created >= setup.total_trials:
                self.exhausted = True
                break
            trial_id = f"{self.run_id}_{self.created:05d}"
            with self.lock:
                config = setup.searcher.suggest(trial_id)
            if config is None:  # the searcher waits for results (a concurrency limit)
                if not self.running and not batch:  # and none will come
                    from raytuner.execution.search_watch import stalled_message

                    self.exhausted = True
                    self.stalled = stalled_message(self.created, setup.total_trials, setup.searcher, 0)
                break
            if isinstance(config, str):  # Searcher.FINISHED
                self.exhausted = True
                break
            self.created += 1
            trial = self._new_trial(trial_id, config)
            with self.lock:
                setup.scheduler.on_trial_add(self.controller, trial)
            batch.append(trial)
        if not batch:
            return
        with self.lock:
            for trial in batch:
                trial.status, trial.stop_reason = "RUNNING", None
                self.running[trial.trial_id] = trial
                self.setup.bookkeeper.on_trial_start(self._iteration, [], trial)
            self._unsaved = True
        while len(self._workers) < setup.at_once:
            worker = threading.Thread(target=self._work, name=f"raytuner-trial-{len(self._workers)}", daemon=True)
            worker.start()
            self._workers.append(worker)
        for trial in batch:
            self.todo.put(trial)

    def _new_trial(self, trial_id: str, config: dict[str, Any]) -> InlineTrial:
        name = f"{self.setup.label}_{trial_id}"
        if self.resumed:  # a folder already there is a trial's lost with the driver (or an errored one's)
            shutil.rmtree(self.folder / name, ignore_errors=True)
        return InlineTrial(
            trial_id=trial_id,
            config=config,
            trainable_name=self.setup.label,
            experiment_dir_name=self.folder.name,
            local_path=str(self.folder / name),
            placement_group_factory=Resources({"CPU": self.setup.cpu}),
        )

    # ------------------------------------------------------------------ one trial, in its thread

    def _work(self) -> None:
        """A worker thread: runs the trials it is handed, one after another, until told to stop.

        Daemons: a trial still running when the process exits (a second Ctrl-C) does not hold it.
        """
        while (trial := self.todo.get()) is not None:
            self._trial_thread(trial)

    def _trial_thread(self, trial: InlineTrial) -> None:
        session = TrialSession(self, trial)
        _ROUTER.local.session = session
        try:
            if self.is_class:
                self._run_class(trial)
            else:
                self.setup.trainable(dict(trial.config))
            outcome, detail = "done", None
        except TrialStopped:
            outcome, detail = "stopped", None
        except BaseException as exc:  # noqa: BLE001 - the trial's own error, recorded like Ray records it
            if is_storage_full(exc):  # not the trial's fault: the run stops, the trial stays to resume
                self._storage_full(exc)
                outcome, detail = "stopped", None
            else:
                outcome, detail = "error", "".join(traceback.format_exception(exc))
        finally:
            _ROUTER.local.session = None
        self.ended.put((trial, outcome, detail))

    def _run_class(self, trial: InlineTrial) -> None:
        from ray.tune.experiment.trial import _TrialInfo
        from ray.tune.result import RESULT_DUPLICATE, SHOULD_CHECKPOINT, TRIAL_INFO

        instance = _in_folder(self.setup.trainable, trial.local_path)(config={**trial.config, TRIAL_INFO: _TrialInfo(trial)})  # type: ignore[arg-type]
        try:
            latest = trial.latest_checkpoint
            if latest is not None:
                instance.restore(latest[0])
                instance._iteration, instance._time_total = latest[1], latest[2]
            while True:
                if self.stopping is not None:
                    trial.stop_reason = self.stopping
                    raise TrialStopped
                result = instance.train()
                if result.get(RESULT_DUPLICATE):  # the trainable ended after its last result
                    return
                result["node_ip"] = NODE_IP
                checkpoint = result.pop(SHOULD_CHECKPOINT, False)
                stop = self.take_result(trial, result)
                if checkpoint:  # after its report, as in TrialSession.report
                    result["checkpoint_dir_name"] = self._checkpoint(trial, result, lambda folder: instance.save(str(folder)))
                if stop:
                    raise TrialStopped
                if result.get("done"):
                    return
        finally:
            instance.stop()

    # ------------------------------------------------------------------ reports (any trial thread)

    def take_result(self, trial: InlineTrial, result: dict[str, Any]) -> bool:
        """One report, in Ray's order: stopper, scheduler, searcher, bookkeeping (the report is
        in the open part once this returns). True when the trial ends here: its thread then
        keeps the report's checkpoint, if any, and raises TrialStopped. The scheduler and
        searcher read it flattened, as on Ray (a metric ``a/b`` may come as ``{"a": {"b": ...}}``)."""
        from ray.tune.utils import flatten_dict

        setup = self.setup
        with self.lock:
            trial.last_result = result
            if setup.stopper(trial.trial_id, result):
                decision = STOP
            else:
                flat = flatten_dict(result)
                decision = setup.scheduler.on_trial_result(self.controller, trial, flat)
                if decision != STOP:  # as on Ray: a stopped trial's searcher hears of it at its end
                    setup.searcher.on_trial_result(trial.trial_id, flat)
            setup.bookkeeper.on_trial_result(self._iteration, [], trial, result)
            if decision == STOP:
                trial.stop_reason = "scheduler"
            elif self.stopping is not None:
                trial.stop_reason = self.stopping
        return trial.stop_reason is not None

    def keep_checkpoint(self, trial: InlineTrial, source: Path, result: dict[str, Any]) -> str:
        """Copy a reported checkpoint into the trial's folder (the trainable deletes its own)."""
        return self._checkpoint(trial, result, lambda folder: shutil.copytree(source, folder))

    def _checkpoint(self, trial: InlineTrial, result: dict[str, Any], write: Callable[[Path], Any]) -> str:
        """Write the trial's next checkpoint folder, then list it in ``checkpoints.json``, then drop
        those the spec does not keep (:mod:`~raytuner.execution.retention`): a driver killed at any
        step leaves a listed, whole one.

        The list in the trial's folder, not the saved state, is what a resume trusts: the state
        may be older than checkpoints written (and pruned) after it.
        """
        trial_folder = Path(trial.local_path)
        trial_folder.mkdir(parents=True, exist_ok=True)
        while True:
            folder = trial_folder / f"checkpoint_{trial.checkpoints_made:06d}"
            trial.checkpoints_made += 1
            if not folder.exists():
                break
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        write(partial)
        os.replace(partial, folder)
        retention = self.setup.retention
        with self.lock:
            made = (str(folder), int(result["training_iteration"]), float(result["time_total_s"]), retention.value(result))
            trial.checkpoints.append(made)
            stay = retention.kept([entry[3] for entry in trial.checkpoints])
            dropped = [entry for i, entry in enumerate(trial.checkpoints) if i not in stay]
            trial.checkpoints = [entry for i, entry in enumerate(trial.checkpoints) if i in stay]
            write_json_atomic(trial_folder / CHECKPOINTS_FILE, [[Path(entry[0]).name, *entry[1:]] for entry in trial.checkpoints])
            for old in dropped:
                shutil.rmtree(old[0], ignore_errors=True)
            self.setup.bookkeeper.on_checkpoint(self._iteration, [], trial, folder)
        return folder.name

    # ------------------------------------------------------------------ a trial's end (main thread)

    def _end(self, trial: InlineTrial, outcome: str, detail: str | None) -> None:
        setup = self.setup
        with self.lock:
            self.running.pop(trial.trial_id, None)
            self._unsaved = True
            if outcome == "error":
                self._failed(trial, detail or "")
                return
            if outcome == "stopped" and trial.stop_reason not in ("scheduler", "budget", "abort"):
                trial.status = "PENDING"  # interrupted: resume runs it again from its latest checkpoint
                self.retry.appendleft(trial)
                return
            if trial.stop_reason in ("budget", "abort"):  # cut short like a scheduler's stop; no report follows to say so
                record = self.book.trials.get(trial.trial_id)
                if record is not None:
                    record.early_stopped = True
            trial.status = "TERMINATED"
            from ray.tune.utils import flatten_dict

            result = flatten_dict(dict(trial.last_result, done=True))
            setup.scheduler.on_trial_complete(self.controller, trial, result)
            setup.searcher.on_trial_complete(trial.trial_id, result=result)
            setup.bookkeeper.on_trial_complete(self._iteration, [], trial)
            self._release(trial)

    def _failed(self, trial: InlineTrial, text: str) -> None:
        setup = self.setup
        folder = Path(trial.local_path)
        error_file = folder / "error.txt"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            error_file.write_text(text)
        except OSError as exc:
            if not is_storage_full(exc):
                raise
            self._storage_full(exc)  # its failure cannot be recorded: resume runs it again
            trial.status = "PENDING"
            self.retry.appendleft(trial)
            return
        trial.error_file = str(error_file)
        trial.num_failures += 1
        retries = setup.max_retries
        if self.stopping is None and (retries < 0 or trial.num_failures <= retries):
            setup.bookkeeper.on_trial_recover(self._iteration, [], trial)
            trial.status = "PENDING"
            self.retry.append(trial)
            return
        trial.status = "ERROR"
        setup.scheduler.on_trial_error(self.controller, trial)
        setup.searcher.on_trial_complete(trial.trial_id, error=True)
        setup.bookkeeper.on_trial_error(self._iteration, [], trial)
        self._release(trial)
        if setup.fail_fast and self.failure is None:
            record = self.book.trials.get(trial.trial_id)
            self.failure = f"trial {trial.trial_id} failed and failure.fail_fast is set: {record.error if record else text}"
            self._stop_all("fail_fast")

    def _release(self, trial: InlineTrial) -> None:
        """A finished trial keeps only its kept checkpoints on disk; nothing of it stays in memory
        but raytuner's record (and whatever the scheduler and searcher keep)."""
        trial.last_result = {}
        record = self.book.trials.get(trial.trial_id)
        if record is not None:
            self._ended.append((time.monotonic(), record))


def _listed_checkpoints(folder: Path, saved: list[KeptFolder]) -> list[KeptFolder]:
    """The trial's checkpoints as its ``checkpoints.json`` lists them (newer than the saved
    state), those still on disk; the state's own list when the trial never wrote one. A list
    written before checkpoints had values (3 items each) gives None for them; one written
    before names were relative, absolute paths (read by their last part: the experiment
    folder may have moved since). A checkpoint folder the list does not name
    (the driver died between writing it and listing it, or between the list and a deletion)
    is deleted."""
    import json

    listed = folder / CHECKPOINTS_FILE
    if not listed.is_file():
        return [entry for entry in saved if Path(entry[0]).is_dir()]
    entries = [
        (str(folder / Path(entry[0]).name), int(entry[1]), float(entry[2]), entry[3] if len(entry) > 3 else None)
        for entry in json.loads(listed.read_text())
    ]
    names = {Path(entry[0]).name for entry in entries}
    for path in folder.glob("checkpoint_*"):
        if path.is_dir() and path.name not in names:
            shutil.rmtree(path, ignore_errors=True)
    return [entry for entry in entries if Path(entry[0]).is_dir()]


def _in_folder(cls: type, folder: str) -> type:
    """``cls`` with its log folder set to the trial's folder (Ray's default without storage is
    a fresh folder under ~/ray_results)."""

    def setup_logdir(self: Any) -> None:
        self._logdir = folder
        os.makedirs(folder, exist_ok=True)

    return type(cls.__name__, (cls,), {"_setup_logdir": setup_logdir, "__module__": cls.__module__})
