"""Finished trials leave memory once the trials table holds them; the table and the summary keep them.

A run's :class:`ExperimentBook` lets go of a finished trial's record at the flush that writes
it (:meth:`ExperimentBook.retire`): the next flush reads its row back from the table it wrote.
Nothing of the trial may be lost on the way: its row, its place among the best, its place on
the Pareto front, the counts.
"""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow.parquet as pq

from raytuner.execution.events import Recorder
from raytuner.execution.runner import RunOptions, RunState, run_experiment
from raytuner.results import layout
from raytuner.results.pareto import front_of_rows
from raytuner.results.records import KEEP_BEST, ExperimentBook, TrialRecord, TrialStatus, read_records
from raytuner.results.schema import ColumnType
from raytuner.results.store import ResultsStore
from raytuner.spec.loader import load_experiment_text


def _trial(
    book: ExperimentBook, store: ResultsStore, trial_id: str, x: float, status: TrialStatus, **metrics: float
) -> TrialRecord:
    record = TrialRecord(trial_id, {"x": x}, status=status, started_at=time.time())
    book.trials[trial_id] = record
    if metrics:
        store.add_result(trial_id, {"training_iteration": 1, "time_total_s": 0.5}, metrics)
        record.iterations = 1
        record.observe(book.metric, book.sign, metrics, 1)
        book.consider(record)
    if status.finished:
        record.ended_at = time.time()
    return record


def _table(folder: Path) -> list[dict]:  # type: ignore[type-arg]
    return pq.read_table(folder / layout.TRIALS).to_pylist()


def test_a_flush_retires_finished_trials_and_the_next_reads_their_rows_back(tmp_path: Path) -> None:
    book = ExperimentBook("loss", -1.0)
    store = ResultsStore(tmp_path, book, {"config/x": ColumnType.FLOAT}, flush_every_s=3600)
    for i, loss in enumerate([0.5, 0.1, 0.9, 0.3]):
        _trial(book, store, f"t{i}", float(i), TrialStatus.COMPLETED, loss=loss)
    _trial(book, store, "t4", 4.0, TrialStatus.STOPPED)  # no metric reported
    running = _trial(book, store, "t5", 5.0, TrialStatus.RUNNING, loss=0.7)
    _trial(book, store, "t6", 6.0, TrialStatus.ERROR)
    lost = _trial(book, store, "t7", 7.0, TrialStatus.RUNNING)
    store.flush()

    assert list(book.trials) == ["t5", "t6", "t7"]  # failed trials stay: resume --retry-errored runs them again
    assert book.size == 8
    assert book.counts() == {**dict.fromkeys(TrialStatus, 0), TrialStatus.COMPLETED: 4, TrialStatus.STOPPED: 1,
                             TrialStatus.RUNNING: 2, TrialStatus.ERROR: 1}  # fmt: skip
    assert [r.trial_id for r in book.ranked()[:3]] == ["t1", "t3", "t0"]

    # a metric that appears only now, the running trial ending, one lost with its driver
    _trial(book, store, "t8", 8.0, TrialStatus.COMPLETED, loss=0.05, acc=0.99)
    running.status, running.ended_at = TrialStatus.COMPLETED, time.time()
    del book.trials[lost.trial_id]
    store.forget(lost.trial_id)
    store.flush()

    rows = _table(tmp_path)
    assert [row["trial_id"] for row in rows] == ["t0", "t1", "t2", "t3", "t4", "t5", "t6", "t8"]
    assert [row["status"] for row in rows] == ["completed"] * 4 + ["stopped", "completed", "error", "completed"]
    assert [row["config/x"] for row in rows] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0]
    assert [row["last/loss"] for row in rows] == [0.5, 0.1, 0.9, 0.3, None, 0.7, None, 0.05]
    assert [row["last/acc"] for row in rows] == [None] * 7 + [0.99]
    assert list(book.trials) == ["t6"]
    assert book.size == 8 and sum(book.counts().values()) == 8
    assert [r.trial_id for r in book.ranked()[:4]] == ["t8", "t1", "t3", "t0"]
    assert book.best is not None and book.best.trial_id == "t8"

    store.flush()  # nothing new: the same table again
    assert _table(tmp_path) == rows
    records = read_records(tmp_path / layout.TRIALS)
    assert records["t8"].last == {"loss": 0.05, "acc": 0.99} and records["t8"].config == {"x": 8.0}


def test_the_best_kept_of_many_retired_trials_are_the_best_of_all(tmp_path: Path) -> None:
    book = ExperimentBook("score", 1.0)
    store = ResultsStore(tmp_path, book, {}, flush_every_s=3600)
    scores = [(i * 37) % 101 / 100 for i in range(60)]
    for i, score in enumerate(scores):
        _trial(book, store, f"t{i:02d}", float(i), TrialStatus.COMPLETED, score=score)
        if i % 7 == 6:
            store.flush()
    store.flush()
    assert not book.trials and len(book.retired.best) == KEEP_BEST
    best_first = sorted(range(60), key=lambda i: -scores[i])
    assert [r.trial_id for r in book.ranked()] == [f"t{i:02d}" for i in best_first[:KEEP_BEST]]
    assert len(_table(tmp_path)) == 60
    assert pq.ParquetFile(tmp_path / layout.TRIALS).metadata.num_row_groups == 1  # not one per flush


def test_the_pareto_front_survives_retirement(tmp_path: Path) -> None:
    objectives = (("loss", "min"), ("size", "min"))
    book = ExperimentBook("loss", -1.0, objectives=objectives)
    store = ResultsStore(tmp_path, book, {}, flush_every_s=3600)
    points = [(0.5, 10.0), (0.2, 30.0), (0.6, 5.0), (0.3, 12.0), (0.7, 7.0), (0.1, 50.0), (0.25, 11.0), (0.4, 4.0)]
    for i, (loss, size) in enumerate(points):
        _trial(book, store, f"t{i}", float(i), TrialStatus.COMPLETED, loss=loss, size=size)
        if i in (2, 5):  # later trials push retired ones off the front: (0.4, 4) beats (0.5, 10) and (0.6, 5)
            store.flush()
    store.flush()
    rows = _table(tmp_path)
    on_table = {row["trial_id"] for row in rows if row["pareto"]}
    expected = front_of_rows(
        [{"status": "completed", "last/loss": loss, "last/size": size} for loss, size in points], objectives
    )
    assert on_table == {f"t{i}" for i, on in enumerate(expected) if on} == {"t1", "t5", "t6", "t7"}
    assert {r.trial_id for r in book.front()} == on_table
    assert [r.trial_id for r in book.front()] == ["t5", "t1", "t6", "t7"]  # best loss first


def test_an_inline_run_holds_no_finished_trial_and_its_summary_counts_them_all(storage: Path) -> None:
    """Long enough (about 3 s) for a flush while running: rows written before it are read back."""
    experiment = load_experiment_text(
        f"""
name: retired
trainable: {{builtin: analytic, objective: sphere, iterations: 2, sleep_s: 0.05}}
metric: loss
mode: min
space: {{x: {{uniform: [-2, 2]}}, y: {{uniform: [-2, 2]}}}}
search: {{algorithm: random, num_samples: 60, seed: 3}}
execution: {{backend: inline}}
storage: {storage}
""",
        overrides=[],
    )
    summary = run_experiment(experiment, RunOptions(num_cpus=2), Recorder())
    assert summary.state is RunState.COMPLETED
    book = summary.book
    assert not book.trials and book.size == 60 and book.counts()[TrialStatus.COMPLETED] == 60
    rows = _table(summary.folder)
    assert sorted(row["trial_id"] for row in rows) == sorted(summary.trials) and len(rows) == 60
    assert all(row["status"] == "completed" and row["iterations"] == 2 for row in rows)
    by_best = sorted(rows, key=lambda row: row["metric_best"])
    assert [r.trial_id for r in book.ranked()] == [row["trial_id"] for row in by_best[:KEEP_BEST]]
    assert book.best is not None and book.best.trial_id == by_best[0]["trial_id"]


def test_a_trial_forgotten_then_run_again_under_its_id_keeps_what_it_reports_again(tmp_path: Path) -> None:
    """An inline resume forgets a trial the saved state does not know (it started after the last
    save, e.g. the save failed on a full disk) and the restored searcher suggests it again under
    the same id: its new reports and row stay, in the tables and through the trial's retirement."""
    book = ExperimentBook("loss", -1.0)
    store = ResultsStore(tmp_path, book, {"config/x": ColumnType.FLOAT}, flush_every_s=3600)
    _trial(book, store, "t0", 0.0, TrialStatus.COMPLETED, loss=0.5)
    _trial(book, store, "t1", 1.0, TrialStatus.COMPLETED, loss=0.9)  # the first run of t1
    store.flush()
    store.finalize()

    book = ExperimentBook("loss", -1.0)  # resumed: the saved state ends before t1
    book.trials = read_records(tmp_path / layout.TRIALS)
    store = ResultsStore(tmp_path, book, {"config/x": ColumnType.FLOAT}, flush_every_s=3600)
    del book.trials["t1"]
    store.forget("t1")
    store.flush()
    again = _trial(book, store, "t1", 1.0, TrialStatus.RUNNING, loss=0.4)
    store.add_result("t1", {"training_iteration": 2, "time_total_s": 1.0}, {"loss": 0.3})
    store.flush()
    again.status = TrialStatus.COMPLETED
    store.flush()  # retires t1: the next flush reads its row back from the table
    _trial(book, store, "t2", 2.0, TrialStatus.COMPLETED, loss=0.7)
    store.finalize()

    assert [row["trial_id"] for row in _table(tmp_path)] == ["t0", "t1", "t2"]
    results = pq.read_table(tmp_path / layout.RESULTS).to_pylist()
    assert [(row["trial_id"], row["training_iteration"], row["loss"]) for row in results] == [
        ("t0", 1, 0.5), ("t1", 1, 0.4), ("t1", 2, 0.3), ("t2", 1, 0.7)
    ]  # fmt: skip


def test_resume_brings_a_row_behind_its_reports_up_to_them(tmp_path: Path) -> None:
    """A driver killed after a trial's last reports reached the open part but before the trials
    table was written again: the row would stay behind for good (a trial restored from its last
    checkpoint reports nothing again), so the resume takes the records up to the reports."""
    from raytuner.execution.revive import rebuild_book

    experiment = load_experiment_text(
        "name: behind\ntrainable: {builtin: analytic}\nmetric: loss\nmode: min\nspace: {x: {uniform: [0, 1]}}\n"
    )
    book = ExperimentBook("loss", -1.0)
    store = ResultsStore(tmp_path, book, {"config/x": ColumnType.FLOAT}, flush_every_s=3600)
    _trial(book, store, "t0", 0.5, TrialStatus.RUNNING, loss=0.9)
    store.add_result("t0", {"training_iteration": 2, "time_total_s": 1.0}, {"loss": 0.2, "acc": 0.5})
    store.flush()  # the row: 2 iterations, best 0.2
    for iteration, loss in [(3, 0.1), (4, 0.3)]:  # in the open part only, then the kill
        store.add_result("t0", {"training_iteration": iteration, "time_total_s": float(iteration)}, {"loss": loss})

    resumed = rebuild_book(tmp_path, experiment).trials["t0"]
    assert (resumed.iterations, resumed.time_total_s, resumed.best, resumed.best_iteration) == (4, 4.0, 0.1, 3)
    assert resumed.last == {"loss": 0.3, "acc": 0.5}
