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
trainable: {function: "logging_trainable:logs_its_reports"}
metric: loss
mode: min
space: {x: {uniform: [-1, 1]}}
search: {algorithm: hyperopt, num_samples: 5, max_concurrent: 1, n_initial_points: 2, seed: 8}
execution: {backend: BACKEND}
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["TUNE_GLOBAL_CHECKPOINT_S"] = "1"  # Ray saves its experiment state every second
    return env


def _until_completed(
    command: list[str], cwd: Path, done: set[str], target: int, env: dict[str, str] | None = None
) -> set[str]:
    """Run ``command`` until ``target`` trials have completed in all, kill -9 it mid-trial;
    return the trials this driver started."""
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**_env(), **(env or {})}, cwd=cwd
    )
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


LOGGING_TRAINABLE = """
import json, os, tempfile, time
from pathlib import Path
from ray import tune

def logs_its_reports(config):
    \"\"\"Checkpoints every second report (a kill after an odd one repeats it on resume), and
    appends each report to its own log first.\"\"\"
    log = Path(os.environ["REPORT_LOG"]) / (tune.get_context().get_trial_id() + ".jsonl")
    step = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            step = json.loads(Path(folder, "state.json").read_text())["step"]
    while step < 6:
        step += 1
        time.sleep(0.3)
        loss = (config["x"] - 0.3) ** 2 + 1.0 / step
        with log.open("a") as fh:
            fh.write(json.dumps({"step": step, "loss": loss}) + "\\n")
        if step % 2:
            tune.report({"loss": loss, "step": step})
            continue
        with tempfile.TemporaryDirectory() as folder:
            Path(folder, "state.json").write_text(json.dumps({"step": step}))
            tune.report({"loss": loss, "step": step}, checkpoint=tune.Checkpoint.from_directory(folder))
"""


@pytest.mark.parametrize("backend", ["ray", "inline"])
def test_after_kills_every_report_the_trainable_made_is_recorded_once(tmp_path: Path, backend: str) -> None:
    """The trainable's own log of its reports against results.parquet: after three kill -9s and
    resumes, each trial's every iteration is there once, with the value it reported last (a
    report repeated after a restore from the checkpoint before it replaces the earlier one),
    and its row agrees."""
    (tmp_path / "logging_trainable.py").write_text(LOGGING_TRAINABLE)
    logs = tmp_path / "logs"
    logs.mkdir()
    spec = tmp_path / "again.yaml"
    spec.write_text(SPEC.replace("BACKEND", backend))
    _kill_three_times_then_complete(spec, tmp_path, {"REPORT_LOG": str(logs)})

    folder = tmp_path / "runs" / "again"
    results = pq.read_table(folder / "results.parquet").to_pylist()
    trials = {row["trial_id"]: row for row in pq.read_table(folder / "trials.parquet").to_pylist()}
    assert len(trials) == 5
    for trial_id, row in trials.items():
        reported: dict[int, float] = {}
        for line in (logs / f"{trial_id}.jsonl").read_text().splitlines():
            entry = json.loads(line)
            reported[entry["step"]] = entry["loss"]  # the last report of each step counts
        recorded = [(r["training_iteration"], r["step"], r["loss"]) for r in results if r["trial_id"] == trial_id]
        assert sorted(recorded) == [(step, step, loss) for step, loss in sorted(reported.items())], trial_id
        assert sorted(reported) == list(range(1, 7)), (trial_id, sorted(reported))
        assert row["iterations"] == 6 and row["metric_best"] == min(reported.values()), row


def _kill_three_times_then_complete(spec: Path, cwd: Path, env: dict[str, str] | None = None) -> None:
    """Run ``spec``, kill -9 the driver mid-trial after the first, second and third trial
    completed (resuming in between), then resume it to the end: nothing finished runs again."""
    runs = str(cwd / "runs")
    folder = cwd / "runs" / "again"
    resume = [RAYTUNER, "resume", "again", "--storage", runs, "--json"]
    done: set[str] = set()
    _until_completed([RAYTUNER, "run", str(spec), "--json", "--storage", runs], cwd, done, 1, env)
    for target in (2, 3):
        before = set(done)
        assert json.loads((folder / "status.json").read_text())["state"] == "running"  # it died mid-run
        started = _until_completed(resume, cwd, done, target, env)
        assert not started & before  # nothing finished was run again

    before = set(done)
    final = subprocess.run(resume, capture_output=True, text=True, env={**_env(), **(env or {})}, cwd=cwd, timeout=300)
    assert final.returncode == 0, final.stdout[-2000:] + final.stderr[-2000:]
    events = [json.loads(line) for line in final.stdout.splitlines()]
    assert not {e["trial_id"] for e in events if e["event"] == "trial_started"} & before
    assert events[-1]["state"] == "completed"

    trials = pq.read_table(folder / "trials.parquet").to_pandas()
    assert len(trials) == 5 and set(trials["status"]) == {"completed"}, trials[["trial_id", "status"]]
    assert before <= set(trials["trial_id"]) and trials["trial_id"].is_unique
    status = json.loads((folder / "status.json").read_text())
    assert status["state"] == "completed" and status["trials"]["completed"] == 5
