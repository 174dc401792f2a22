"""Reading one trial's reports reads the row groups that may hold it, not the whole results table."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
from large_experiment import write_large_experiment

import raytuner
from raytuner.results.folder import Folder
from raytuner.results.tables import result_sources


class _CountingFile(io.FileIO):
    def __init__(self, path: str, counter: list[int]) -> None:
        super().__init__(path, "rb")
        self._counter = counter

    def read(self, size: int = -1) -> bytes:
        data = super().read(size)
        self._counter[0] += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        count = super().readinto(buffer) or 0
        self._counter[0] += count
        return count


class _Counting(pafs.FSSpecHandler):
    """The local filesystem, counting every byte read from a file."""

    def __init__(self) -> None:
        super().__init__(fsspec.filesystem("file"))
        self.read = [0]

    def open_input_file(self, path: str) -> pa.PythonFile:
        return pa.PythonFile(_CountingFile(path, self.read), mode="r")


def _bytes_to_read(folder: Path, trial_id: str | None) -> tuple[int, pa.Table]:
    handler = _Counting()
    sources = result_sources(Folder(pafs.PyFileSystem(handler), str(folder), str(folder)))
    handler.read[0] = 0  # the schemas every reader reads first are not the reports
    columns = ["trial_id", "training_iteration", "loss"]
    table = pa.Table.from_batches(list(sources.batches(columns, trial_id=trial_id)))
    return handler.read[0], table


def test_one_trials_reports_are_read_from_the_row_groups_that_hold_it(tmp_path: Path) -> None:
    folder = tmp_path / "large"
    ids = write_large_experiment(folder, trials=500, reports=400, trials_per_part=25)  # 20 parts of 10,000 rows
    everything, table = _bytes_to_read(folder, None)
    trial = ids[333]
    one, reports = _bytes_to_read(folder, trial)
    assert table.num_rows == 500 * 400 and everything > 0
    assert reports.equals(table.filter(pc.equal(table["trial_id"], trial)))  # the same rows, in the same order
    assert reports.num_rows == 400
    print(f"bytes read: {one:,} for one trial, {everything:,} for all")
    assert one < everything / 5  # its part's row group and every part's footer, not 20 parts' data
    # the public read gives the same rows (the dashboard's trial page reads through it)
    same = raytuner.open(str(folder)).results(trial).select(["trial_id", "training_iteration", "loss"])
    assert same.equals(reports)
    assert raytuner.open(str(folder)).results("no-such-trial").num_rows == 0


def test_a_file_replaced_after_its_footer_was_read_is_read_as_it_is_now(tmp_path: Path) -> None:
    """The footers kept from the listing are used only while the file keeps its size
    (a compaction replaces ``results.parquet``; a resume may start ``part-000000`` again)."""
    import pyarrow.parquet as pq

    folder = tmp_path / "replaced"
    ids = write_large_experiment(folder, trials=50, reports=10, trials_per_part=25)
    sources = result_sources(Folder.local(folder))
    part = folder / "results.parts" / "part-000001.parquet"
    table = pq.read_table(part)
    pq.write_table(table.slice(0, 30), part)  # another size, another footer
    rows = pa.Table.from_batches(list(sources.batches(["trial_id", "loss"], trial_id=ids[25])))
    assert rows.num_rows == 10 and rows["loss"].equals(table.slice(0, 10)["loss"])
