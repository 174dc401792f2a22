"""Kill -9 the driver again and again, resuming each time: the end is as if it never died."""

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
name: again
trainable: {builtin: analytic, iterations: 6, sleep_s: 0.3}
metric: loss
mode: min
space: {x: {uniform: [-1, 1]}}
search: {algorithm: hyperopt, num_samples: 5, max_concurrent: 1, n_initial_points: 2, seed: 8}
checkpoint: {every: 2}
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["TUNE_GLOBAL_CHECKPOINT_S"] = "1"  # Ray saves its experiment state every second
    return env


def _until_completed(command: list[str], cwd: Path, done: set[str], target: int) -> set[str]:
    """Run ``command`` until ``target`` trials have completed in all, kill -9 it mid-trial;
    return the trials this driver started."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_env(), cwd=cwd)
    started: set[str] = set()
    deadline = time.time() + 120
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            event = json.loads(line)
            if event["event"] == "trial_started":
                started.add(event["trial_id"])
            if event["event"] == "trial_completed":
                done.add(event["trial_id"])
            if len(done) >= target or time.time() > deadline:
                break
        time.sleep(3)  # Ray saves its state, raytuner its tables, with the trial finished; the next is under way
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert len(done) == target, (target, done)
    return started


def test_three_kills_in_a_row_then_the_run_completes(tmp_path: Path) -> None:
    spec = tmp_path / "again.yaml"
    spec.write_text(SPEC)
    runs = str(tmp_path / "runs")
    folder = tmp_path / "runs" / "again"
    resume = [RAYTUNER, "resume", "again", "--storage", runs, "--json"]
    done: set[str] = set()
    _until_completed([RAYTUNER, "run", str(spec), "--json", "--storage", runs], tmp_path, done, 1)
    for target in (2, 3):
        before = set(done)
        assert json.loads((folder / "status.json").read_text())["state"] == "running"  # it died mid-run
        started = _until_completed(resume, tmp_path, done, target)
        assert not started & before  # nothing finished was run again

    before = set(done)
    final = subprocess.run(resume, capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=300)
    assert final.returncode == 0, final.stdout[-2000:] + final.stderr[-2000:]
    events = [json.loads(line) for line in final.stdout.splitlines()]
    assert not {e["trial_id"] for e in events if e["event"] == "trial_started"} & before
    assert events[-1]["state"] == "completed"

    trials = pq.read_table(folder / "trials.parquet").to_pandas()
    assert len(trials) == 5 and set(trials["status"]) == {"completed"}, trials[["trial_id", "status"]]
    assert before <= set(trials["trial_id"]) and trials["trial_id"].is_unique
    assert (trials["iterations"] == 6).all()
    results = pq.read_table(folder / "results.parquet").to_pandas()
    per_trial = results.groupby("trial_id")["training_iteration"].apply(sorted)
    assert len(per_trial) == 5 and all(list(its) == list(range(1, 7)) for its in per_trial), per_trial.to_dict()
    status = json.loads((folder / "status.json").read_text())
    assert status["state"] == "completed" and status["trials"]["completed"] == 5
