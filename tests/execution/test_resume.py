"""Kill the driver for real, then ``raytuner resume``: nothing finished is lost or rerun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytestmark = [pytest.mark.subprocess, pytest.mark.slow]

RAYTUNER = str(Path(sys.executable).parent / "raytuner")
SPEC = """
name: crash
trainable: {builtin: analytic, iterations: 8, sleep_s: 0.25}
metric: loss
mode: min
space: {x: {uniform: [-1, 1]}}
search: {algorithm: hyperopt, num_samples: 6, max_concurrent: 2, n_initial_points: 3, seed: 4}
checkpoint: {every: 2}
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["TUNE_GLOBAL_CHECKPOINT_S"] = "1"  # Ray saves its experiment state every second
    return env


def _killed_after_two_completed(tmp_path: Path, sleep_s: float) -> set[str]:
    """Run the spec, kill -9 its driver ``sleep_s`` after two trials completed; their ids."""
    spec = tmp_path / "crash.yaml"
    spec.write_text(SPEC)
    proc = subprocess.Popen(
        [RAYTUNER, "run", str(spec), "--json", "--storage", str(tmp_path / "runs")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_env(),
        cwd=tmp_path,
    )
    completed: set[str] = set()
    deadline = time.time() + 240
    assert proc.stdout is not None
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == "trial_completed":
            completed.add(event["trial_id"])
        if len(completed) >= 2 or time.time() > deadline:
            break
    time.sleep(sleep_s)  # let Ray save its state (every second), and raytuner its tables, with those trials finished
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return completed


def test_resume_after_kill_9_keeps_what_finished(tmp_path: Path) -> None:
    completed_before = _killed_after_two_completed(tmp_path, 3)
    assert len(completed_before) >= 2
    folder = tmp_path / "runs" / "crash"
    assert json.loads((folder / "status.json").read_text())["state"] == "running"  # died mid-run

    done = subprocess.run(
        [RAYTUNER, "resume", "crash", "--storage", str(tmp_path / "runs"), "--json"],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    events = [json.loads(line) for line in done.stdout.splitlines()]
    restarted = {e["trial_id"] for e in events if e["event"] == "trial_started"}
    assert not restarted & completed_before  # nothing finished was run again
    assert events[-1]["state"] == "completed"

    trials = pq.read_table(folder / "trials.parquet").to_pandas()
    assert len(trials) == 6 and set(trials["status"]) == {"completed"}
    assert completed_before <= set(trials["trial_id"])
    results = pq.read_table(folder / "results.parquet").to_pandas()
    per_trial = results.groupby("trial_id")["training_iteration"].apply(sorted)
    assert all(list(its) == list(range(1, 9)) for its in per_trial), per_trial.to_dict()  # every report once
    assert json.loads((folder / "status.json").read_text())["state"] == "completed"


def test_resume_refuses_what_is_not_an_experiment(tmp_path: Path) -> None:
    done = subprocess.run([RAYTUNER, "resume", "nothing", "--storage", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 2 and "no experiment 'nothing'" in done.stderr


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_stops_gracefully_and_the_run_resumes(tmp_path: Path, stop: signal.Signals) -> None:
    """SIGTERM (``jobs stop``, a scheduler's time limit, ``kill``) stops as Ctrl-C does: it ended
    the driver on the spot, leaving the status ``running`` and the last reports in open parts."""
    spec = tmp_path / "crash.yaml"
    spec.write_text(SPEC)
    proc = subprocess.Popen(
        [RAYTUNER, "run", str(spec), "--json", "--storage", str(tmp_path / "runs")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_env(),
        cwd=tmp_path,
    )
    assert proc.stdout is not None
    seen: list[str] = []
    for line in proc.stdout:
        seen.append(json.loads(line)["event"])
        # a trial completed and a third started in its place: that one has most of its 2 s to go
        # (the second, started beside the first, may complete before the stop reaches it)
        if "trial_completed" in seen and seen.count("trial_started") >= 3:
            break
    proc.send_signal(stop)
    rest = proc.stdout.read()
    assert proc.wait(timeout=120) == 130
    finished = json.loads(rest.splitlines()[-1])
    assert finished["event"] == "experiment_finished" and finished["state"] == "interrupted"
    folder = tmp_path / "runs" / "crash"
    assert json.loads((folder / "status.json").read_text())["state"] == "interrupted"
    kept = pq.read_table(folder / "results.parquet").num_rows
    assert kept >= 8  # the finished trial's reports were compacted, nothing left in parts
    cut = pq.read_table(folder / "trials.parquet").to_pandas()
    # the trials the stop cut short are paused, not `completed` (Ray marks them TERMINATED) nor `running`
    assert set(cut["status"]) <= {"completed", "paused", "pending"} and "paused" in set(cut["status"])
    assert (cut.loc[cut["status"] == "completed", "iterations"] == 8).all(), cut[["status", "iterations"]]

    done = subprocess.run([RAYTUNER, "resume", str(folder), "--json"], capture_output=True, text=True, env=_env(), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    trials = pq.read_table(folder / "trials.parquet").to_pandas()
    assert len(trials) == 6 and set(trials["status"]) == {"completed"}


def test_a_second_ctrl_c_stops_at_once_and_the_run_still_resumes(tmp_path: Path) -> None:
    spec = tmp_path / "crash.yaml"
    spec.write_text(SPEC.replace("sleep_s: 0.25", "sleep_s: 0.5"))  # trials still running at the 2nd SIGINT
    proc = subprocess.Popen(
        [RAYTUNER, "run", str(spec), "--json", "--storage", str(tmp_path / "runs")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=tmp_path,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if json.loads(line)["event"] == "trial_completed":
            break
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    second = time.monotonic()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert time.monotonic() - second < 30, err[-2000:]
    folder = tmp_path / "runs" / "crash"
    assert json.loads((folder / "status.json").read_text())["state"] == "interrupted"
    assert pq.read_table(folder / "results.parquet").num_rows >= 8  # the finished trial's reports
    assert pq.read_table(folder / "trials.parquet").num_rows >= 1

    done = subprocess.run([RAYTUNER, "resume", str(folder), "--json"], capture_output=True, text=True, env=_env(), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    trials = pq.read_table(folder / "trials.parquet").to_pandas()
    assert len(trials) == 6 and set(trials["status"]) == {"completed"}
    results = pq.read_table(folder / "results.parquet").to_pandas()
    per_trial = results.groupby("trial_id")["training_iteration"].apply(sorted)
    assert all(list(its) == list(range(1, 9)) for its in per_trial), per_trial.to_dict()


def _ray_statuses(folder: Path) -> dict[str, str]:
    """Each trial's status in Ray's saved experiment state (in the experiment folder)."""
    statuses: dict[str, str] = {}
    for path in folder.glob("experiment_state-*.json"):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):  # being replaced by Ray's sync
            continue
        for trial_state, _ in data.get("trial_data", []):
            trial = json.loads(trial_state)
            statuses[trial["trial_id"]] = trial.get("status")
    return statuses


def _ray_finished(folder: Path) -> set[str]:
    """The trials Ray's saved experiment state lists as TERMINATED."""
    return {trial_id for trial_id, status in _ray_statuses(folder).items() if status == "TERMINATED"}


def test_a_kill_the_moment_ray_saved_a_finished_trial_loses_nothing(tmp_path: Path) -> None:
    """Killed as soon as Ray's saved state shows two finished trials (no grace period for
    raytuner's tables): the resumed run still holds every trial and every report, once."""
    spec = tmp_path / "crash.yaml"
    # No checkpoints: a trial's last reports reach the tables only by their periodic flush.
    spec.write_text(SPEC.replace("max_concurrent: 2", "max_concurrent: 1").replace("checkpoint: {every: 2}\n", ""))
    env = _env()
    env["TUNE_GLOBAL_CHECKPOINT_S"] = "0"  # Ray saves its state at every step
    proc = subprocess.Popen(
        [RAYTUNER, "run", str(spec), "--json", "--storage", str(tmp_path / "runs")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=tmp_path,
    )  # fmt: skip
    folder = tmp_path / "runs" / "crash"
    deadline = time.time() + 240
    while len(_ray_finished(folder)) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    finished = _ray_finished(folder)
    assert len(finished) >= 2

    done = subprocess.run(
        [RAYTUNER, "resume", "crash", "--storage", str(tmp_path / "runs"), "--json"],
        capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert not {e["trial_id"] for e in events if e["event"] == "trial_started"} & finished  # not run again
    trials = pq.read_table(folder / "trials.parquet").to_pandas()
    assert len(trials) == 6 and set(trials["status"]) == {"completed"}, trials[["trial_id", "status"]]
    assert finished <= set(trials["trial_id"])
    results = pq.read_table(folder / "results.parquet").to_pandas()
    per_trial = results.groupby("trial_id")["training_iteration"].apply(sorted)
    assert len(per_trial) == 6 and all(list(its) == list(range(1, 9)) for its in per_trial), per_trial.to_dict()


def _searcher_saved_with_one_live(folder: Path, trial_id: str) -> dict[str, bytes] | None:
    """Ray's saved searcher files, if whole and saved while ``trial_id`` was the only trial
    suggested and still running (the concurrency limit and HyperOpt both count it live)."""
    import ray.cloudpickle as cloudpickle

    files = {p.name: p.read_bytes() for p in [*folder.glob("search_gen_state-*"), *folder.glob("searcher-state-*")]}
    try:
        states = {name: cloudpickle.loads(data) for name, data in files.items()}
    except Exception:  # noqa: BLE001 - a file being copied by Ray's sync
        return None
    generator = [state for name, state in states.items() if name.startswith("search_gen_state")]
    tpe = [state for name, state in states.items() if name.startswith("searcher-state")]
    if len(generator) != 1 or len(tpe) != 1 or generator[0]["counter"] != 1:
        return None
    if generator[0]["name:ConcurrencyLimiter"]["live_trials"] != {trial_id} or set(tpe[0]["live"]) != {trial_id}:
        return None
    return files


def test_resume_with_the_searcher_saved_before_its_trial_finished_neither_waits_nor_reruns(tmp_path: Path) -> None:
    """Ray copies its trials' state and its searcher's state to the experiment folder as separate
    files: a driver killed between the copies leaves a trial finished in the one and still running
    in the other. Made here deterministically: the searcher files saved while the first trial ran
    are put back after Ray saved it finished. The resumed searcher must not count that trial
    against ``max_concurrent: 1`` (it waited forever for the slot) nor start more than planned."""
    spec = tmp_path / "crash.yaml"
    spec.write_text(
        SPEC.replace("max_concurrent: 2", "max_concurrent: 1")
        .replace("num_samples: 6", "num_samples: 4")
        .replace("checkpoint: {every: 2}\n", "")
    )
    env = _env()
    env["TUNE_GLOBAL_CHECKPOINT_S"] = "0"  # Ray saves its state at every step
    proc = subprocess.Popen(
        [RAYTUNER, "run", str(spec), "--json", "--storage", str(tmp_path / "runs")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=tmp_path,
    )  # fmt: skip
    folder = tmp_path / "runs" / "crash"
    first, older = None, None
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        statuses = _ray_statuses(folder)
        if older is None and list(statuses.values()) == ["RUNNING"]:
            first = next(iter(statuses))
            older = _searcher_saved_with_one_live(folder, first)
        elif older is not None and statuses.get(first) == "TERMINATED":
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert older is not None and first in _ray_finished(folder)
    for name, data in older.items():  # the searcher as saved before its first trial finished
        (folder / name).write_bytes(data)

    try:
        done = subprocess.run(
            [RAYTUNER, "resume", "crash", "--storage", str(tmp_path / "runs"), "--json"],
            capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=240,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"resume still running after {exc.timeout} s")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert first not in {e["trial_id"] for e in events if e["event"] == "trial_started"}
    trials = pq.read_table(folder / "trials.parquet").to_pandas()
    assert len(trials) == 4 and set(trials["status"]) == {"completed"}, trials[["trial_id", "status"]]
    results = pq.read_table(folder / "results.parquet").to_pandas()
    per_trial = results.groupby("trial_id")["training_iteration"].apply(sorted)
    assert len(per_trial) == 4 and all(list(its) == list(range(1, 9)) for its in per_trial), per_trial.to_dict()


def test_a_state_file_ray_left_cut_short_is_put_back_whole_and_without_a_copy_is_one_line(tmp_path: Path) -> None:
    """Ray copies its experiment state into the folder in place: a full disk mid-copy (seen in CI)
    cut ``experiment_state-*.json`` short and the resume died in Ray's traceback, exit 130. A
    state Ray cannot restore for another reason made it start the experiment over."""
    assert len(_killed_after_two_completed(tmp_path, 2.5)) >= 2
    folder = tmp_path / "runs" / "crash"
    (state,) = folder.glob("experiment_state-*.json")
    searcher = list(folder.glob("search*.pkl"))
    assert searcher and (folder / ".ray_state" / state.name).is_file()
    for path in (state, *searcher):
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # what the full disk left
    resume = [RAYTUNER, "resume", "crash", "--storage", str(tmp_path / "runs"), "--json"]

    (folder / ".ray_state").rename(tmp_path / "kept")
    refused = subprocess.run(resume, capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=120)
    assert refused.returncode == 1, refused.stderr[-2000:]
    assert refused.stderr.strip().splitlines() == [
        f"error: crash: Ray's saved state {state.name} is cut short (the storage filled up while Ray wrote it) and no "
        "whole copy was kept; the experiment cannot be resumed: start it again with raytuner run"
    ]

    (tmp_path / "kept").rename(folder / ".ray_state")
    # a state Ray reads but cannot restore from: Ray logs it and starts the experiment over beside
    # its trials (new trials, its state overwritten); raytuner stops before anything runs
    cut, tables = state.read_bytes(), {name: (folder / name).read_bytes() for name in ("trials.parquet", "results.parquet")}
    trial_dirs = {p.name for p in folder.iterdir() if p.is_dir()}
    state.write_text("{}")
    refused = subprocess.run(resume, capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=120)
    assert refused.returncode == 1, refused.stderr[-2000:]
    assert refused.stderr.strip().splitlines() == [
        "error: crash: Ray could not restore its saved state (KeyError: 'runner_data'); nothing was run and the "
        "tables are as they were (raytuner show reads them; --debug shows Ray's traceback)"
    ]
    assert {name: (folder / name).read_bytes() for name in tables} == tables
    assert {p.name for p in folder.iterdir() if p.is_dir()} == trial_dirs and state.read_text() == "{}"
    state.write_bytes(cut)

    done = subprocess.run(resume, capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    trials = pq.read_table(folder / "trials.parquet").to_pylist()
    assert len(trials) == 6 and {t["status"] for t in trials} == {"completed"}, trials
    assert all(t["iterations"] == 8 for t in trials)
