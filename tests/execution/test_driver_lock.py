"""One driver per experiment: ``resume`` or ``extend`` of a run still going is refused in one line,
the run goes on intact; a driver killed with kill -9 leaves nothing that blocks the resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from s3_server import S3Server

pytestmark = [pytest.mark.subprocess, pytest.mark.slow]

RAYTUNER = str(Path(sys.executable).parent / "raytuner")
SPEC = """
name: busy
trainable: {builtin: analytic, iterations: 12, sleep_s: 0.4}
metric: loss
mode: min
space: {x: {uniform: [-1, 1]}}
search: {algorithm: random, num_samples: 4, max_concurrent: 2, seed: 3}
checkpoint: {every: 2}
"""


# Trials that report once, then wait for the test to open the gate: the run is still going,
# however slowly this machine starts the second driver.
GATED = """
name: busy
trainable: {function: "gate:train"}
metric: loss
mode: min
space: {x: {uniform: [-1, 1]}}
search: {algorithm: random, num_samples: 4, max_concurrent: 2, seed: 3}
"""
GATE = """
import os, time
from ray import tune

def train(config):
    tune.report({"loss": config["x"] ** 2})
    deadline = time.time() + 600
    while not os.path.exists(%r) and time.time() < deadline:
        time.sleep(0.1)
    for _ in range(2):
        tune.report({"loss": config["x"] ** 2})
"""


def _gated(tmp_path: Path) -> Path:
    """:data:`GATED` and its trainable in ``tmp_path``; the gate file to create when the test is done."""
    gate = tmp_path / "open"
    (tmp_path / "gate.py").write_text(GATE % str(gate))
    (tmp_path / "busy.yaml").write_text(GATED)
    return gate


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS" and not k.startswith("AWS_")}
    env["TUNE_GLOBAL_CHECKPOINT_S"] = "1"
    return {**env, **extra}


def _start(
    tmp_path: Path, *extra: str, storage: str = "runs", env: dict[str, str] | None = None, until: str = "trial_completed"
) -> subprocess.Popen[str]:
    """``raytuner run`` of the spec in ``busy.yaml`` (:data:`SPEC` unless there is one), read up to its first
    ``until`` event."""
    spec = tmp_path / "busy.yaml"
    if not spec.exists():
        spec.write_text(SPEC)
    proc = subprocess.Popen(
        [RAYTUNER, "run", str(spec), "--json", "--storage", storage, *extra],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env or _env(), cwd=tmp_path,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if json.loads(line)["event"] == until:
            return proc
    proc.kill()
    raise AssertionError(f"the run ended before a trial finished (exit {proc.wait()})")


def _raytuner(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["timeout", "300", RAYTUNER, *args, "--storage", str(tmp_path / "runs"), "--json"],
        capture_output=True, text=True, env=_env(), cwd=tmp_path,
    )  # fmt: skip


def _all_four_completed(folder: Path | str, s3: pafs.FileSystem | None = None, iterations: int = 12) -> None:
    trials = pq.read_table(f"{folder}/trials.parquet", filesystem=s3).to_pylist()
    assert len(trials) == 4 and {t["status"] for t in trials} == {"completed"}, trials
    results = pq.read_table(f"{folder}/results.parquet", columns=["trial_id", "training_iteration"], filesystem=s3)
    results = results.to_pylist()
    per_trial: dict[str, list[int]] = {}
    for row in results:
        per_trial.setdefault(row["trial_id"], []).append(row["training_iteration"])
    assert sorted(per_trial) == sorted(t["trial_id"] for t in trials)
    assert all(sorted(its) == list(range(1, iterations + 1)) for its in per_trial.values()), per_trial


@pytest.mark.parametrize("backend", ["inline", pytest.param("ray", marks=pytest.mark.ray)])
def test_a_second_driver_is_refused_and_the_run_completes_intact(tmp_path: Path, backend: str) -> None:
    gate = _gated(tmp_path)
    first = _start(tmp_path, *(["--inline"] if backend == "inline" else ["--cpus", "2"]), until="new_best")
    try:
        folder = tmp_path / "runs" / "busy"
        for command in (["resume", "busy"], ["extend", "busy", "-n", "2"]):
            second = _raytuner(tmp_path, *command)
            assert second.returncode == 2, second.stdout[-2000:] + second.stderr[-2000:]
            assert second.stdout == ""
            assert second.stderr.splitlines() == [
                f"error: experiment 'busy' ({folder}) is still running: its driver (pid {first.pid} on "
                f"{os.uname().nodename}) holds it; wait for that run to end or stop it first (Ctrl-C), then try again"
            ]
        gate.touch()
        assert first.stdout is not None
        events = [json.loads(line) for line in first.stdout]
        assert first.wait(timeout=300) == 0
    finally:
        first.kill()
    assert events[-1]["event"] == "experiment_finished" and events[-1]["state"] == "completed"
    assert json.loads((folder / "status.json").read_text())["state"] == "completed"
    _all_four_completed(folder, iterations=3)


def test_a_driver_killed_with_kill_9_leaves_the_experiment_resumable(tmp_path: Path) -> None:
    first = _start(tmp_path, "--inline")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    folder = tmp_path / "runs" / "busy"
    assert json.loads((folder / ".driver.lock").read_text())["pid"] == first.pid  # the dead driver's lock file stays
    done = _raytuner(tmp_path, "resume", "busy")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1])["state"] == "completed"
    _all_four_completed(folder)


@pytest.mark.ray
def test_on_object_storage_a_second_driver_on_the_machine_is_refused(s3_server: S3Server, tmp_path: Path) -> None:
    s3 = s3_server.client()
    s3.create_dir("driver-lock")
    uri = "s3://driver-lock/team/busy"
    env = _env(**s3_server.env, RAYTUNER_CACHE=str(tmp_path / "cache"))
    gate = _gated(tmp_path)
    first = _start(tmp_path, "--cpus", "2", storage="s3://driver-lock/team", env=env, until="new_best")  # inline refuses buckets
    copy = tmp_path / "cache" / "remote" / "s3" / "driver-lock" / "team" / "busy"
    try:
        resume = subprocess.run(
            ["timeout", "300", RAYTUNER, "resume", uri], capture_output=True, text=True, env=env, cwd=tmp_path
        )
        assert resume.returncode == 2, resume.stdout[-2000:] + resume.stderr[-2000:]
        assert resume.stderr.splitlines() == [
            f"error: experiment 'busy' ({uri}) is still running: its driver (pid {first.pid} on {os.uname().nodename})"
            " holds it; wait for that run to end or stop it first (Ctrl-C), then try again"
        ]
        # a reader on the same machine reads the live working copy rather than replacing it from the bucket
        deadline = time.time() + 120
        while not (copy / "trials.parquet").exists() and time.time() < deadline:  # written every few seconds
            time.sleep(0.5)
        best = subprocess.run(["timeout", "300", RAYTUNER, "best", uri], capture_output=True, text=True, env=env, cwd=tmp_path)
        assert best.returncode == 0, best.stderr[-2000:]
        gate.touch()
        assert first.wait(timeout=300) == 0
    finally:
        first.kill()
    _all_four_completed("driver-lock/team/busy", s3, iterations=3)
