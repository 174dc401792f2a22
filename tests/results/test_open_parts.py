"""A driver killed with reports still buffered loses none of them: they are in the open part.

The writer runs in a child process that kills itself with SIGKILL (no flush, no handler), the
way the out-of-memory killer or ``kill -9`` ends a driver; the parent reads what is on disk.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from raytuner.results import layout
from raytuner.results.records import ExperimentBook, TrialRecord
from raytuner.results.store import ResultsStore, unsealed_parts

WRITER = """
import os, shutil, signal, sys, time
from pathlib import Path
from raytuner.results.records import ExperimentBook, TrialRecord, TrialStatus
from raytuner.results.store import ResultsStore

folder, duplicate = Path(sys.argv[1]), sys.argv[2] == "duplicate"
book = ExperimentBook("loss", -1.0)
book.trials["t1"] = TrialRecord("t1", {"x": 1.0}, status=TrialStatus.RUNNING)
store = ResultsStore(folder, book, {}, flush_every_s=3600)

def report(i, **extra):
    store.add_result("t1", {"training_iteration": i, "time_total_s": i / 10, "timestamp": time.time()},
                     {"loss": 1.0 / i, **extra})

for i in range(1, 4):
    report(i)
store.flush()  # part 0: three reports, and the trials table
for i in range(4, 9):
    report(i, late=i * 2, phase="warm" if i < 6 else 7)  # a metric appearing late, one changing type
if duplicate:  # killed after the part was written, before its open twin was removed
    saved = Path(shutil.copy(next((folder / "results.open").glob("*.jsonl")), folder / "saved.jsonl"))
    store.flush()
    (folder / "results.open").mkdir(exist_ok=True)
    shutil.move(saved, folder / "results.open" / "part-000001.jsonl")
os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_writer(folder: Path, duplicate: bool = False) -> None:
    folder.mkdir()
    done = subprocess.run([sys.executable, "-c", WRITER, str(folder), "duplicate" if duplicate else "-"], timeout=120)
    assert done.returncode == -signal.SIGKILL


def _resumed(folder: Path) -> ResultsStore:
    book = ExperimentBook("loss", -1.0)
    book.trials["t1"] = TrialRecord("t1", {"x": 1.0})
    return ResultsStore(folder, book, {})


def test_reports_of_a_killed_driver_are_in_its_open_part(tmp_path: Path) -> None:
    folder = tmp_path / "exp"
    _killed_writer(folder)
    assert [p.name for p in (folder / layout.RESULTS_PARTS).glob("*.parquet")] == ["part-000000.parquet"]
    [open_part] = unsealed_parts(folder)
    lines = [json.loads(line) for line in open_part.read_text().splitlines()]
    assert [line["training_iteration"] for line in lines] == [4, 5, 6, 7, 8]


def test_resume_seals_the_open_part_and_the_final_table_has_every_report(tmp_path: Path) -> None:
    folder = tmp_path / "exp"
    _killed_writer(folder)
    store = _resumed(folder)
    assert not unsealed_parts(folder)
    store.finalize()
    results = pq.read_table(folder / layout.RESULTS).to_pylist()
    assert [row["training_iteration"] for row in results] == list(range(1, 9))
    assert [row["loss"] for row in results] == [1.0 / i for i in range(1, 9)]
    assert [row["late"] for row in results] == [None, None, None, 8.0, 10.0, 12.0, 14.0, 16.0]
    assert [row["phase"] for row in results][3:] == ["warm", "warm", "7", "7", "7"]  # one type: string
    assert not (folder / layout.RESULTS_OPEN).exists()


def test_an_open_part_whose_parquet_twin_exists_is_not_counted_twice(tmp_path: Path) -> None:
    folder = tmp_path / "exp"
    _killed_writer(folder, duplicate=True)
    assert (folder / layout.RESULTS_OPEN / "part-000001.jsonl").is_file()
    assert not unsealed_parts(folder)  # part-000001.parquet holds the same reports
    store = _resumed(folder)
    store.finalize()
    assert [row["training_iteration"] for row in pq.read_table(folder / layout.RESULTS).to_pylist()] == list(range(1, 9))


def test_the_report_reads_a_killed_runs_open_part(tmp_path: Path) -> None:
    from raytuner.results.report.data import _read_reports

    folder = tmp_path / "exp"
    _killed_writer(folder)
    reports, notes = _read_reports(folder, "loss", {"t1": 0.0})
    assert sorted(r.iteration for r in reports) == list(range(1, 9)) and not notes


def test_export_of_a_killed_run_holds_the_open_parts_reports(tmp_path: Path) -> None:
    folder = tmp_path / "exp"
    _killed_writer(folder)
    raytuner = str(Path(sys.executable).parent / "raytuner")
    done = subprocess.run([raytuner, "export", str(folder), "-f", "jsonl"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [row["training_iteration"] for row in rows] == list(range(1, 9))
    assert [row["phase"] for row in rows][3:] == ["warm", "warm", "7", "7", "7"]  # one type: string
    assert folder.joinpath(layout.RESULTS_OPEN).is_dir()  # reading changed nothing
