"""Trials whose process dies or hangs: failed with the reason, retried, the experiment goes on."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from raytuner.execution.events import Recorder
from raytuner.execution.runner import RunOptions, RunState, run_experiment
from raytuner.results.records import TrialStatus
from raytuner.spec.loader import load_experiment_text

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SPEC = """
name: {name}
trainable: {{function: "user_trainables:{function}"}}
metric: loss
mode: min
space: {{x: {{grid: [-1.0, 0.25, 1.0]}}}}
search: {{algorithm: grid}}
failure: {failure}
"""


def _run(storage: Path, name: str, function: str, failure: str):  # type: ignore[no-untyped-def]
    text = SPEC.format(name=name, function=function, failure=failure) + f"\nstorage: {storage}\n"
    return run_experiment(load_experiment_text(text), RunOptions(), Recorder())


def _check(summary, error_words: str) -> None:  # type: ignore[no-untyped-def]
    """x=-1 never fails; x=0.25 fails once and resumes from its checkpoint; x=1 always fails."""
    assert summary.state is RunState.COMPLETED
    by_x = {record.config["x"]: record for record in summary.trials.values()}
    assert {x: (r.status, r.num_failures) for x, r in by_x.items()} == {
        -1.0: (TrialStatus.COMPLETED, 0),
        0.25: (TrialStatus.COMPLETED, 1),
        1.0: (TrialStatus.ERROR, 2),  # the first try and its one retry
    }
    assert by_x[0.25].iterations == 4 and by_x[1.0].iterations == 2
    trials = {row["trial_id"]: row for row in pq.read_table(summary.folder / "trials.parquet").to_pylist()}
    assert len(trials) == 3
    assert error_words in trials[by_x[1.0].trial_id]["error"]
    assert trials[by_x[1.0].trial_id]["status"] == "error"
    assert trials[by_x[-1.0].trial_id]["error"] is None
    results = pq.read_table(summary.folder / "results.parquet").to_pandas()
    steps = results.groupby("trial_id")["step"].apply(sorted).to_dict()
    assert steps[by_x[0.25].trial_id] == [1, 2, 3, 4]  # resumed after step 2, every report once
    assert steps[by_x[1.0].trial_id] == [1, 2]


def test_a_trial_whose_process_dies_is_retried_and_recorded(ray_session: None, storage: Path) -> None:
    summary = _run(storage, "dies", "process_dies", "{max_retries: 1}")
    _check(summary, "the trial's process died (Worker exit type: SYSTEM_ERROR")
    killed = next(r for r in summary.trials.values() if r.config["x"] == 0.25)  # SIGKILL, then resumed
    assert killed.error is not None and killed.error.startswith("the trial's process died")
    assert killed.error.endswith("a crash, or a kill (the out-of-memory killer?)")


def test_a_hung_trial_is_failed_by_the_watchdog_and_retried(ray_session: None, storage: Path) -> None:
    summary = _run(storage, "hangs", "hangs", "{max_retries: 1, trial_timeout_s: 4}")
    _check(summary, "no report for 4 s (trial_timeout_s)")


HANGING_COMMAND = """
name: hangs-command
trainable:
  command: [python, SCRIPT, PIDS]
metric: loss
mode: min
space: {x: {grid: [1.0]}}
search: {algorithm: grid}
failure: {max_retries: 1, trial_timeout_s: 3}
"""
HANGING_PROGRAM = """
import json, os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # in the program's group
with open(sys.argv[1], "a") as fh:
    fh.write(f"{os.getpid()} {child.pid}\\n")
print(json.dumps({"loss": 1}), flush=True)
time.sleep(600)
"""
