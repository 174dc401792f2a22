"""The storage fills up mid-run: one line, a status that says so, and a resume that loses nothing.

The storage is a real 2 MB tmpfs, filled to a few hundred kB, grown once the run has failed
(``mount -o remount``). Mounting needs root (CI runs as root); elsewhere the test skips.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytestmark = [pytest.mark.subprocess, pytest.mark.slow]

RAYTUNER = str(Path(sys.executable).parent / "raytuner")
SPEC = """
name: full
trainable: {builtin: analytic, iterations: 10, sleep_s: 0.05}
metric: loss
mode: min
space: {x: {uniform: [-1, 1]}}
search: {algorithm: random, num_samples: 12, seed: 3}
checkpoint: {every: 1}
"""
ROOM_KB = 250  # what the run finds free: a few trials finish before the disk is full


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs with ``ROOM_KB`` free (a file takes the rest); unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        free_kb = shutil.disk_usage(mount).free // 1024
        (mount / "filler").write_bytes(b"\0" * (free_kb - ROOM_KB) * 1024)
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.parametrize("backend", ["inline", pytest.param("ray", marks=pytest.mark.ray)])
def test_a_full_disk_stops_the_run_in_one_line_and_resume_loses_nothing(
    tmp_path: Path, small_disk: Path, backend: str
) -> None:
    spec = tmp_path / "full.yaml"
    spec.write_text(SPEC + f"execution: {{backend: {backend}}}\n")
    runs = small_disk / "runs"
    folder = runs / "full"
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAYTUNER_DEBUG")}

    failed = subprocess.run(
        [RAYTUNER, "run", str(spec), "--storage", str(runs), "--json"], capture_output=True, text=True, env=env, timeout=300
    )
    assert failed.returncode == 1, failed.stderr[-3000:]
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in failed.stderr, failed.stderr[-3000:]  # Ray's controller's too
    assert lines[-1].startswith(f"error: the storage is full (No space left on device): {runs};"), lines[-1]
    assert "status.json says failed" in lines[-1] and "raytuner resume full" in lines[-1]
    status = json.loads((folder / "status.json").read_text())
    assert status["state"] == "failed" and "storage is full" in status["error"]
    assert not list(folder.rglob("*.tmp")), list(folder.rglob("*.tmp"))  # no half-written file left to take room

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    resumed = subprocess.run(
        [RAYTUNER, "resume", "full", "--storage", str(runs), "--json"], capture_output=True, text=True, env=env, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    trials = pq.read_table(folder / "trials.parquet").to_pylist()
    assert len(trials) == 12 and {t["status"] for t in trials} == {"completed"}, trials
    assert all(t["iterations"] == 10 for t in trials), [(t["trial_id"], t["iterations"]) for t in trials]
    results = pq.read_table(folder / "results.parquet").to_pylist()
    seen: dict[str, list[int]] = {}
    for row in results:
        seen.setdefault(row["trial_id"], []).append(row["training_iteration"])
    assert sorted(seen) == sorted(t["trial_id"] for t in trials)
    assert all(sorted(its) == list(range(1, 11)) for its in seen.values()), seen
    status = json.loads((folder / "status.json").read_text())
    assert status["state"] == "completed" and status["trials"] == {**dict.fromkeys(status["trials"], 0), "completed": 12}


def test_a_disk_too_full_for_the_runs_start_leaves_nothing_and_says_run_it_again(tmp_path: Path, small_disk: Path) -> None:
    """Room for the storage's probe, not for the spec and status.json: the run said that resume
    would go on, and resume then found an empty spec.yaml (exit 2) in a folder it could never resume."""
    spec = tmp_path / "tiny.yaml"
    spec.write_text(SPEC)
    (small_disk / "rest").write_bytes(b"\0" * (shutil.disk_usage(small_disk).free - 4096))  # one block left
    runs = small_disk / "runs"
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAYTUNER_DEBUG")}
    failed = subprocess.run(
        [RAYTUNER, "run", str(spec), "--inline", "--storage", str(runs)], capture_output=True, text=True, env=env, timeout=120
    )
    assert failed.returncode == 1, failed.stderr[-3000:]
    assert failed.stderr.splitlines() == [
        f"error: the storage is full (No space left on device): {runs}; the run could not start and left nothing. "
        "Free some space, then run it again"
    ]
    assert list(runs.iterdir()) == []


def test_status_json_is_rewritten_in_place_when_no_new_file_fits(small_disk: Path) -> None:
    from raytuner.execution.full_storage import write_status

    status = small_disk / "status.json"
    write_status(status, {"state": "running", "trials": {"running": 2}, "error": None})
    with (small_disk / "rest").open("wb", buffering=0) as fh, pytest.raises(OSError):  # not a byte left
        while True:
            fh.write(b"\0" * 4096)
    write_status(status, {"state": "failed", "error": "the storage is full (No space left on device)"})
    assert json.loads(status.read_text()) == {"state": "failed", "error": "the storage is full (No space left on device)"}
    assert not list(small_disk.glob("*.tmp"))


def test_resume_and_extend_on_a_full_disk_are_one_line_and_change_nothing(tmp_path: Path, small_disk: Path) -> None:
    """``extend`` died in a traceback taking its lock (the holder's pid could not be written) and
    widening the spec; ``resume`` left a completed experiment ``running`` while saying that
    status.json was not updated."""
    spec = tmp_path / "tiny.yaml"
    spec.write_text(SPEC.replace("num_samples: 12", "num_samples: 3").replace("iterations: 10", "iterations: 3"))
    runs = small_disk / "runs"
    folder = runs / "full"
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAYTUNER_DEBUG")}
    run = [RAYTUNER, "run", str(spec), "--inline", "--storage", str(runs), "-q"]
    done = subprocess.run(run, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    (folder / ".driver.lock").unlink()  # as on a fresh checkout of the folder: the lock file must be made again
    before = {name: (folder / name).read_bytes() for name in ("status.json", "spec.yaml", "trials.parquet")}
    with (small_disk / "rest").open("wb", buffering=0) as fh, pytest.raises(OSError):  # not a byte left
        while True:
            fh.write(b"\0" * 4096)

    for command, says in [
        ("resume", "status.json was not updated. Free some space, then raytuner resume full"),
        ("extend", "nothing was extended. Free some space, then run raytuner extend full again"),
    ]:
        args = [RAYTUNER, command, "full", "--storage", str(runs), *(["--num-samples", "2"] if command == "extend" else [])]
        refused = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
        assert refused.returncode == 1, refused.stderr[-3000:]
        assert refused.stderr.strip().splitlines() == [
            f"error: the storage is full (No space left on device): {runs}; " + refused.stderr.split("; ", 1)[1].strip()
        ] and says in refused.stderr, refused.stderr[-3000:]
        assert {name: (folder / name).read_bytes() for name in before} == before
        assert not list(folder.rglob("*.tmp")) and not list(folder.glob(".*.tmp"))

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    extend = [RAYTUNER, "extend", "full", "--num-samples", "2", "--storage", str(runs), "-q"]
    extended = subprocess.run(extend, capture_output=True, text=True, env=env, timeout=300)
    assert extended.returncode == 0, extended.stderr[-3000:]
    assert pq.read_table(folder / "trials.parquet").num_rows == 5
