"""A command trainable's processes do not outlive its trial, however the trial's actor ends.

The program (tests/fixtures/commands/family.py) starts a shell that starts ``sleep 300``, and
writes the pids of all three and of its parent (the trial's actor) to a file. The actor is
then killed for real: SIGKILL from outside, or the hung-trial watchdog's ``ray.kill``. No one
runs the trial's cleanup then; the program, the shell and the sleep must still be gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from raytuner.execution.events import Recorder
from raytuner.execution.runner import RunOptions, RunState, RunSummary, run_experiment
from raytuner.results.records import TrialStatus
from raytuner.spec.loader import load_experiment_text
from raytuner.workloads import reaper

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads process states in /proc")

COMMANDS = Path(__file__).resolve().parents[1] / "fixtures" / "commands"
WAIT_S = 60  # a bound on waiting for an event, not a timing assertion

SPEC = """
name: {name}
trainable: {{command: [python, family.py, "{pids}"], workdir: "{workdir}", stop_grace_s: 2}}
metric: loss
mode: min
space: {{x: {{grid: [1.0]}}}}
search: {{algorithm: grid}}
failure: {failure}
storage: {storage}
"""


def _alive(pid: int) -> bool:
    """Running or sleeping; a zombie (dead, not yet reaped by its new parent) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _wait(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {WAIT_S} s for {what}")
        time.sleep(0.2)


def _first_attempt(pids: Path) -> tuple[int, int, int, int]:
    program, actor, shell, sleep = (int(word) for word in pids.read_text().split())
    return program, actor, shell, sleep


def _run(storage: Path, pids: Path, name: str, failure: str) -> RunSummary:
    text = SPEC.format(name=name, pids=pids, workdir=COMMANDS, failure=failure, storage=storage)
    return run_experiment(load_experiment_text(text), RunOptions(), Recorder())


def _kill_when_started(pids: Path, killed: list[tuple[int, int, int, int]]) -> None:
    """SIGKILL the trial's actor (the program's parent) once the program has written its pids."""
    deadline = time.monotonic() + WAIT_S
    while not (pids.is_file() and pids.read_text().strip()):
        if time.monotonic() > deadline:
            return
        time.sleep(0.1)
    family = _first_attempt(pids)
    for pid in family[2:]:  # the shell and sleep are up: the grandchild exists before the kill
        assert _alive(pid)
    os.kill(family[1], signal.SIGKILL)
    killed.append(family)


def _check_retried(summary: RunSummary, error_words: str) -> None:
    assert summary.state is RunState.COMPLETED
    (record,) = summary.trials.values()
    assert record.status is TrialStatus.COMPLETED and record.num_failures == 1
    assert error_words in (record.error or ""), record.error
    (row,) = pq.read_table(summary.folder / "trials.parquet").to_pylist()
    assert row["status"] == "completed" and row["num_failures"] == 1 and error_words in row["error"]
    # the retry started over (no checkpoint): its iteration 1 replaced the first attempt's
    attempts = pq.read_table(summary.folder / "results.parquet").column("attempt").to_pylist()
    assert attempts == [2], attempts


# ---------------------------------------------------------------------------- the watcher alone

OWNER = """
import subprocess, sys, time
from raytuner.workloads import reaper
group = subprocess.Popen(["sh", "-c", "sleep 300 & echo $! > " + sys.argv[1] + ".sleep; wait"], start_new_session=True)
guard = reaper.guard(group.pid, 1.0)
print(group.pid, flush=True)
time.sleep(600)
"""


def _group_of(tmp_path: Path) -> tuple[subprocess.Popen[str], int, int]:
    """A process that owns a group (a shell and its sleep) under a watcher."""
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(tmp_path / "g")], stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    shell = int(owner.stdout.readline())
    _wait(lambda: (tmp_path / "g.sleep").is_file() and (tmp_path / "g.sleep").read_text().strip(), "the sleep")
    return owner, shell, int((tmp_path / "g.sleep").read_text())


def test_the_watcher_ends_the_group_when_its_owner_is_sigkilled(tmp_path: Path) -> None:
    owner, shell, sleep = _group_of(tmp_path)
    try:
        assert _alive(shell) and _alive(sleep)
        owner.kill()  # SIGKILL: no Python runs in the owner to stop anything
        owner.wait()
        _wait(lambda: not _alive(shell) and not _alive(sleep), "the shell and sleep to end")
    finally:
        for pid in (shell, sleep):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_the_watcher_leaves_by_itself_when_the_group_ends(tmp_path: Path) -> None:
    group = subprocess.Popen(["sleep", "300"], start_new_session=True)
    guard = reaper.guard(group.pid, 1.0)
    assert guard is not None

    def watchers() -> list[int]:
        return [pid for pid in _pids_running("reaper.py") if f" {group.pid} " in _cmdline(pid)]

    try:
        _wait(lambda: bool(watchers()), "the watcher to start")
    finally:
        group.kill()  # the group ends without the guard's release
        group.wait()
    _wait(lambda: not watchers(), "the watcher to exit after the group ended")
    guard.release()


def _pids_running(word: str) -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and word in _cmdline(int(p.name))]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


# ---------------------------------------------------------------------------- through Ray


@pytest.mark.ray
@pytest.mark.slow
def test_a_sigkilled_actor_takes_the_program_and_its_grandchild_along(ray_session: None, tmp_path: Path, storage: Path) -> None:
    pids = tmp_path / "pids.txt"
    killed: list[tuple[int, int, int, int]] = []
    killer = threading.Thread(target=_kill_when_started, args=(pids, killed), daemon=True)
    killer.start()
    try:
        summary = _run(storage, pids, "sigkill", "{max_retries: 1}")
    finally:
        killer.join(timeout=WAIT_S)
    assert killed, "the program never wrote its pids"
    program, actor, shell, sleep = killed[0]
    assert actor != os.getpid()  # the program ran under a Ray worker, not this process
    _wait(lambda: not any(_alive(pid) for pid in (program, shell, sleep)), "the program, shell and sleep to end")
    _check_retried(summary, "the trial's process died")


@pytest.mark.ray
@pytest.mark.slow
def test_the_watchdog_ends_a_hung_programs_processes_and_says_why(ray_session: None, tmp_path: Path, storage: Path) -> None:
    pids = tmp_path / "pids.txt"
    summary = _run(storage, pids, "watchdog", "{max_retries: 1, trial_timeout_s: 3}")
    program, actor, shell, sleep = _first_attempt(pids)
    _wait(lambda: not any(_alive(pid) for pid in (program, shell, sleep)), "the program, shell and sleep to end")
    _check_retried(summary, "no report for 3 s (trial_timeout_s); the trial was killed")


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Whatever a test asserts, leave no ``sleep 300`` behind (never touching the actor)."""
    yield
    pids = tmp_path / "pids.txt"
    if pids.is_file() and pids.read_text().strip():
        program, _actor, shell, sleep = _first_attempt(pids)
        for pid in (program, shell, sleep):
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@pytest.mark.ray
@pytest.mark.slow
def test_a_program_that_exits_ends_its_trial_and_what_it_left_running(ray_session: None, tmp_path: Path, storage: Path) -> None:
    # the background sleep holds the program's stdout open after the program has exited
    pid_file = tmp_path / "sleep.pid"
    script = f"sleep 300 & echo $! > {pid_file}; echo '{{{{\"loss\": 1}}}}'"
    text = (
        "name: leaves\n"
        f"trainable: {{command: [sh, -c, {json.dumps(script)}]}}\n"
        "metric: loss\nmode: min\nsearch: {num_samples: 1}\n"
        "failure: {trial_timeout_s: 60}\n"  # without the fix the trial would hang: fail it instead
        f"storage: {storage}\n"
    )
    summary = run_experiment(load_experiment_text(text), RunOptions(), Recorder())
    (record,) = summary.trials.values()
    assert (record.status, record.num_failures, record.iterations) == (TrialStatus.COMPLETED, 0, 1), record.error
    sleep = int(pid_file.read_text())
    try:
        _wait(lambda: not _alive(sleep), "the background sleep to end")
    finally:
        if _alive(sleep):
            os.kill(sleep, signal.SIGKILL)


RESCUE_S = 120  # a bound on the run, not a timing assertion: then the detached sleep is killed


@pytest.mark.slow
@pytest.mark.parametrize("backend", [pytest.param("ray", marks=pytest.mark.ray), "inline"])
def test_a_program_that_exits_ends_its_trial_though_a_detached_child_holds_its_output(
    backend: str, tmp_path: Path, storage: Path, request: pytest.FixtureRequest
) -> None:
    # tests/fixtures/commands/detach.py reports twice and exits, leaving `sleep 300` in a
    # session of its own (out of the program's group) holding its stdout and stderr
    if backend == "ray":
        request.getfixturevalue("ray_session")
    pid_file = tmp_path / "detached.pid"
    text = (
        "name: detached\n"
        f"trainable: {{command: [python, detach.py, {json.dumps(str(pid_file))}], workdir: {json.dumps(str(COMMANDS))}}}\n"
        f"metric: loss\nmode: min\nsearch: {{num_samples: 1}}\nexecution: {{backend: {backend}}}\nstorage: {storage}\n"
    )
    finished, rescued = threading.Event(), threading.Event()

    def rescue() -> None:  # without the fix the run waits for the sleep's output to close
        if not finished.wait(RESCUE_S) and pid_file.is_file():
            rescued.set()
            os.kill(int(pid_file.read_text()), signal.SIGKILL)

    threading.Thread(target=rescue, daemon=True).start()
    try:
        summary = run_experiment(load_experiment_text(text), RunOptions(), Recorder())
        finished.set()
        assert not rescued.is_set(), "the trial waited for output held open by the detached child"
        (record,) = summary.trials.values()
        assert (record.status, record.num_failures, record.iterations) == (TrialStatus.COMPLETED, 0, 2), record.error
        losses = pq.read_table(summary.folder / "results.parquet").column("loss").to_pylist()
        assert losses == [1.0, 0.5]
        log = (Path(record.trial_dir or "") / "output.log").read_text()
        assert "[stderr] the sleep runs on" in log
        assert _alive(int(pid_file.read_text()))  # a process in a session of its own is left alone
    finally:
        finished.set()
        if pid_file.is_file() and _alive(int(pid_file.read_text())):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
