"""``execution.backend: inline``: trials in threads of the raytuner process, no Ray started.

In-process runs go through ``run_experiment`` exactly as the CLI does; the Ctrl-C and kill
tests run the installed command. None of these needs the session's Ray.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from raytuner.errors import ExperimentError, MetricNotReportedError, SpecError, UsageError
from raytuner.execution.events import EventKind, Recorder
from raytuner.execution.inline import STATE_FILE
from raytuner.execution.runner import RunOptions, RunState, extend_experiment, run_experiment
from raytuner.results.records import TrialStatus
from raytuner.spec.loader import load_experiment_text

RAYTUNER = str(Path(sys.executable).parent / "raytuner")

ASHA = """
name: inline-asha
trainable: {builtin: analytic, objective: sphere, iterations: 9}
metric: loss
mode: min
space: {x: {uniform: [-2, 2]}, y: {uniform: [-2, 2]}}
search: {algorithm: hyperopt, num_samples: 12, seed: 5, n_initial_points: 4}
scheduler: {type: asha, max_t: 9, grace_period: 1, reduction_factor: 3}
execution: {backend: inline}
"""


def run(text: str, storage: Path, overrides: list[str] | None = None, **options: Any):  # type: ignore[no-untyped-def]
    experiment = load_experiment_text(text + f"\nstorage: {storage}\n", overrides=overrides or [])
    recorder = Recorder()
    return run_experiment(experiment, RunOptions(**options), recorder), recorder


def _ray_processes() -> set[int]:
    """Ray daemons started from this process (ray.init starts them as its children)."""
    import psutil

    children = psutil.Process().children(recursive=True)
    return {p.pid for p in children if p.name() in ("raylet", "gcs_server")}


def test_an_asha_search_runs_in_this_process_and_records_everything(storage: Path) -> None:
    import ray

    before, initialized = _ray_processes(), ray.is_initialized()
    summary, recorder = run(ASHA, storage, num_cpus=2)
    assert _ray_processes() <= before and ray.is_initialized() == initialized  # no Ray was started for it
    assert summary.state is RunState.COMPLETED
    records = list(summary.trials.values())
    assert len(records) == 12
    statuses = {r.status for r in records}
    assert statuses <= {TrialStatus.COMPLETED, TrialStatus.STOPPED} and TrialStatus.STOPPED in statuses
    assert all(r.iterations == 9 for r in records if r.status is TrialStatus.COMPLETED)
    started = next(e for e in recorder.events if e.kind is EventKind.EXPERIMENT_STARTED)
    assert started.data["ray"] == "inline" and started.data["placement"]["trials_at_once"] == 2
    # every report is in the table once, in order, and the trials table agrees with the book
    results = pq.read_table(summary.folder / "results.parquet").to_pandas()
    assert len(results) == summary.book.reports
    for trial_id, rows in results.groupby("trial_id"):
        iterations = summary.trials[str(trial_id)].iterations
        assert list(rows.sort_values("timestamp")["training_iteration"]) == list(range(1, iterations + 1))
    trials = pq.read_table(summary.folder / "trials.parquet").to_pandas()
    assert dict(zip(trials["trial_id"], trials["status"], strict=True)) == {r.trial_id: r.status.value for r in records}
    best = min(results["loss"])
    assert summary.book.best is not None and summary.book.best.value == pytest.approx(best)
    assert (summary.folder / STATE_FILE).is_file()


def test_one_trial_at_a_time_gives_the_same_run_twice(storage: Path) -> None:
    first, _ = run(ASHA, storage, ["search.max_concurrent=1"])
    second, _ = run(ASHA, storage, ["search.max_concurrent=1"])

    def table(folder: Path) -> list[tuple[Any, ...]]:
        results = pq.read_table(folder / "results.parquet").to_pandas()
        return sorted(zip(results["trial_id"].str[-5:], results["training_iteration"], results["loss"], strict=True))
    assert table(first.folder) == table(second.folder)
    assert first.folder != second.folder


FAILING = """
name: inline-fail
trainable: {builtin: analytic, iterations: 10, fail_at: 7}
metric: loss
mode: min
space: {x: {uniform: [-1, 1]}}
search: {algorithm: random, num_samples: 2, seed: 1}
checkpoint: {every: 5, keep: 1}
failure: {max_retries: 2}
execution: {backend: inline}
"""


def test_a_failing_trial_is_retried_from_its_checkpoint_then_recorded_with_its_error(storage: Path) -> None:
    summary, recorder = run(FAILING, storage)
    assert summary.state is RunState.COMPLETED
    records = list(summary.trials.values())
    assert [r.status for r in records] == [TrialStatus.ERROR] * 2
    assert all(r.num_failures == 3 for r in records)  # the first try and two retries
    assert all(r.error == "RuntimeError: analytic objective failed at iteration 7 (fail_at=7)" for r in records)
    assert recorder.kinds().count(EventKind.TRIAL_RETRY) == 4
    results = pq.read_table(summary.folder / "results.parquet").to_pandas()
    for _, rows in results.groupby("trial_id"):  # retries went on from iteration 5, not from 1
        assert sorted(rows["training_iteration"]) == [1, 2, 3, 4, 5, 6]
    for record in records:
        folder = Path(record.trial_dir or "")
        assert [p.name for p in folder.glob("checkpoint_*")] == ["checkpoint_000000"]  # keep: 1
        assert "Traceback" in (folder / "error.txt").read_text()


def test_fail_fast_ends_the_run_failed_at_the_first_error(storage: Path) -> None:
    with pytest.raises(ExperimentError, match="failure.fail_fast is set: RuntimeError"):
        run(FAILING, storage, ["failure.max_retries=0", "failure.fail_fast=true", "search.max_concurrent=1"])
    status = json.loads((storage / "inline-fail" / "status.json").read_text())
    assert status["state"] == "failed" and "failure.fail_fast is set" in status["error"]  # was null
    assert status["trials"]["running"] == 0  # the trials it cut were left running


def test_user_functions_and_classes_see_their_trial(storage: Path) -> None:
    summary, _ = run(
        """
name: inline-context
trainable: {function: "user_trainables:writes_its_context"}
metric: loss
mode: min
space: {x: {grid: [-1.0, 0.5, 2.0]}}
search: {algorithm: grid}
execution: {backend: inline}
""",
        storage,
    )
    assert summary.book.best is not None and summary.book.best.value == 0.25
    for record in summary.trials.values():
        seen = json.loads((Path(record.trial_dir or "") / "context.json").read_text())
        assert seen == {"trial_id": record.trial_id, "trial_name": Path(record.trial_dir or "").name}

    resumable, _ = run(
        """
name: inline-class
trainable: {function: "user_trainables:Resumable"}
metric: loss
mode: min
space: {x: {grid: [0.5, 1.0]}}
search: {algorithm: grid}
stop: {iterations: 5}
failure: {max_retries: 1}
execution: {backend: inline}
""",
        storage,
    )
    records = list(resumable.trials.values())
    assert all(r.status is TrialStatus.COMPLETED and r.num_failures == 1 and r.iterations == 5 for r in records)
    results = pq.read_table(resumable.folder / "results.parquet").to_pandas()
    assert sorted(set(results["restored_from"])) == [0, 2]  # failed at step 3, went on from its step-2 checkpoint


def test_a_report_is_recorded_before_its_checkpoint_is_kept(storage: Path) -> None:
    """A resume restores a trial from its latest listed checkpoint and goes on with the next
    iteration: the report of the checkpoint's iteration must be recorded before the checkpoint
    is, or a kill in between loses that report for good (the trainable checks it when saving)."""
    summary, _ = run(
        """
name: inline-order
trainable: {function: "user_trainables:ChecksItsReport"}
metric: loss
mode: min
space: {x: {grid: [0.5, 1.0]}}
search: {algorithm: grid}
stop: {iterations: 3}
execution: {backend: inline}
""",
        storage,
    )
    records = list(summary.trials.values())
    assert [(r.status, r.iterations, r.error) for r in records] == [(TrialStatus.COMPLETED, 3, None)] * 2


def test_a_command_trainable_runs_its_program(storage: Path) -> None:
    script = Path(__file__).resolve().parents[1] / "fixtures" / "commands" / "train.py"
    summary, _ = run(
        f"""
name: inline-command
trainable: {{command: [python, "{script}", --x, "{{x}}", --width, "8", --steps, "3"]}}
metric: loss
mode: min
space: {{x: {{grid: [0.1, 0.5]}}}}
search: {{algorithm: grid}}
execution: {{backend: inline}}
""",
        storage,
    )
    records = list(summary.trials.values())
    assert len(records) == 2 and all(r.status is TrialStatus.COMPLETED and r.iterations == 3 for r in records), records


def test_a_metric_never_reported_stops_the_run_and_leaves_nothing(storage: Path) -> None:
    with pytest.raises(MetricNotReportedError, match="reported accuracy, val_loss"):
        run(
            """
name: inline-nometric
trainable: {function: "user_trainables:wrong_metric"}
metric: val_accuracy
mode: max
search: {algorithm: random, num_samples: 4}
execution: {backend: inline}
""",
            storage,
        )
    assert not (storage / "inline-nometric").exists()


def test_an_extended_run_goes_on_from_the_saved_searcher(storage: Path) -> None:
    summary, _ = run(ASHA, storage)
    first = sorted(summary.trials)
    extended = extend_experiment(summary.folder, 4, RunOptions(), Recorder())
    assert extended.state is RunState.COMPLETED
    ids = sorted(extended.trials)
    assert len(ids) == 16 and ids[:12] == first
    assert ids[12:] == [f"{ids[0][:5]}_{n:05d}" for n in range(12, 16)]  # numbered on from the first run's


@pytest.mark.parametrize(
    ("override", "where", "message"),
    [
        ("scheduler.type=pbt", "scheduler.type", "runs the fifo, asha and median schedulers, found pbt"),
        ("resources.gpu=0.5", "resources.gpu", "cannot each get their own GPU; found resources.gpu 0.5"),
        ("execution.loggers=[csv]", "execution.loggers", "no per-trial loggers or trackers"),
        ("failure.trial_timeout_s=5", "failure.trial_timeout_s", "cannot end a hung trial"),
        ("storage=s3://bucket/runs", "storage", "in a local folder, found storage s3://bucket/runs"),
    ],
)
def test_what_needs_ray_actors_is_refused_at_validation(override: str, where: str, message: str) -> None:
    text = ASHA.replace("scheduler: {type: asha, max_t: 9, grace_period: 1, reduction_factor: 3}\n", "")
    if override.startswith("scheduler.type=pbt"):
        text = """
name: inline-pbt
trainable: {builtin: analytic, iterations: 9}
metric: loss
mode: min
space: {x: {uniform: [-2, 2]}}
search: {algorithm: random, num_samples: 4}
scheduler: {type: pbt, perturbation_interval: 2, hyperparam_mutations: {x: {uniform: [-2, 2]}}}
checkpoint: {every: 2}
"""
        override = "execution.backend=inline"
    with pytest.raises(SpecError) as caught:
        load_experiment_text(text, overrides=[override])
    assert caught.value.location is not None and caught.value.location.path == where
    assert message in str(caught.value) and "use execution.backend: ray" in str(caught.value)


def test_joining_a_cluster_is_refused_and_leaves_no_folder(storage: Path) -> None:
    with pytest.raises(UsageError, match="Ray cluster was given"):
        run(ASHA, storage, address="127.0.0.1:6379")
    assert not (storage / "inline-asha").exists()


SLOW = """
name: inline-slow
trainable: {builtin: analytic, iterations: 10, sleep_s: 0.15}
metric: loss
mode: min
space: {x: {uniform: [-1, 1]}}
search: {algorithm: hyperopt, num_samples: 6, seed: 4, n_initial_points: 3}
checkpoint: {every: 2}
execution: {backend: inline}
"""


def _start(tmp_path: Path, text: str = SLOW, *, sigint_ignored: bool = False) -> subprocess.Popen[str]:
    spec = tmp_path / "slow.yaml"
    spec.write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return subprocess.Popen(
        [RAYTUNER, "run", str(spec), "--json", "--storage", str(tmp_path / "runs"), "--cpus", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
        # as a shell script's `raytuner run ... &` starts it: SIGINT ignored from the start
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None,
    )


def _read_until(proc: subprocess.Popen[str], kind: str, count: int) -> set[str]:
    seen: set[str] = set()
    assert proc.stdout is not None
    deadline = time.time() + 120
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == kind:
            seen.add(event["trial_id"])
        if len(seen) >= count or time.time() > deadline:
            break
    return seen


def _resume_and_check(tmp_path: Path, finished_before: set[str]) -> None:
    folder = tmp_path / "runs" / "inline-slow"
    done = subprocess.run([RAYTUNER, "resume", str(folder), "--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert not {e["trial_id"] for e in events if e["event"] == "trial_started"} & finished_before
    assert events[-1]["state"] == "completed"
    trials = pq.read_table(folder / "trials.parquet").to_pandas()
    assert len(trials) == 6 and set(trials["status"]) == {"completed"}
    results = pq.read_table(folder / "results.parquet").to_pandas()
    per_trial = results.groupby("trial_id")["training_iteration"].apply(sorted)
    assert all(list(its) == list(range(1, 11)) for its in per_trial), per_trial.to_dict()  # every report once


@pytest.mark.subprocess
def test_ctrl_c_stops_at_the_next_report_and_the_run_resumes(tmp_path: Path) -> None:
    proc = _start(tmp_path)
    finished = _read_until(proc, "trial_completed", 2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    status = json.loads((tmp_path / "runs" / "inline-slow" / "status.json").read_text())
    assert status["state"] == "interrupted"
    _resume_and_check(tmp_path, finished)


@pytest.mark.subprocess
def test_sigterm_stops_as_ctrl_c_does_even_with_sigint_ignored(tmp_path: Path) -> None:
    """SIGTERM (``jobs stop``, a scheduler's limit, ``kill``) ended the driver on the spot: the
    status stayed ``running`` and the open part was never sealed."""
    proc = _start(tmp_path, sigint_ignored=True)
    _read_until(proc, "trial_started", 1)
    proc.send_signal(signal.SIGTERM)  # before the first trial ends: the run's loop is under way
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    assert json.loads(out.splitlines()[-1])["state"] == "interrupted"
    status = json.loads((tmp_path / "runs" / "inline-slow" / "status.json").read_text())
    assert status["state"] == "interrupted"
    trials = pq.read_table(tmp_path / "runs" / "inline-slow" / "trials.parquet").to_pandas()
    assert set(trials["status"]) == {"paused"}  # were left `running` by an interrupted run
    _resume_and_check(tmp_path, set())


@pytest.mark.subprocess
def test_a_kill_9_loses_nothing_that_finished(tmp_path: Path) -> None:
    proc = _start(tmp_path)
    finished = _read_until(proc, "trial_completed", 3)
    time.sleep(1.5)  # the state is saved at most every second: let it see those trials end
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert json.loads((tmp_path / "runs" / "inline-slow" / "status.json").read_text())["state"] == "running"
    _resume_and_check(tmp_path, finished)


def _completed(folder: Path) -> set[str]:
    try:
        trials = pq.read_table(folder / "trials.parquet", columns=["trial_id", "status"]).to_pylist()
    except (OSError, ValueError):  # not written yet
        return set()
    return {t["trial_id"] for t in trials if t["status"] == "completed"}


@pytest.mark.subprocess
def test_a_trial_that_ended_after_the_last_saved_state_frees_its_place_on_resume(tmp_path: Path) -> None:
    """A trial running at the state's last save can end, and reach the tables, before a kill: the
    resume does not run it again, and its searcher must hear of its end too (under max_concurrent 1
    it kept the one place taken and the resumed run started nothing more). Made deterministic:
    the state saved while the first trial ran is put back once the tables show it completed."""
    import ray.cloudpickle as cloudpickle

    proc = _start(tmp_path, SLOW.replace("num_samples: 6,", "num_samples: 6, max_concurrent: 1,"))
    folder = tmp_path / "runs" / "inline-slow"
    first, older = None, None
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if older is None and (folder / STATE_FILE).is_file():
            data = (folder / STATE_FILE).read_bytes()  # replaced whole, never written in place
            state = cloudpickle.loads(data)
            if state["created"] == 1 and len(state["trials"]) == 1:
                first, older = state["trials"][0].trial_id, data
        elif older is not None and first in _completed(folder):
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert older is not None and first in _completed(folder)
    (folder / STATE_FILE).write_bytes(older)

    done = subprocess.run([RAYTUNER, "resume", str(folder), "--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    events = [json.loads(line) for line in done.stdout.splitlines()]
    started = [e["trial_id"] for e in events if e["event"] == "trial_started"]
    assert first not in started and len(set(started)) == 5  # the five trials after the first, each once
    assert events[-1]["state"] == "completed" and events[-1]["trials"]["completed"] == 6


@pytest.mark.subprocess
def test_a_second_ctrl_c_stops_at_once_and_the_run_still_resumes(tmp_path: Path) -> None:
    spec = tmp_path / "slow.yaml"
    spec.write_text(
        SLOW.replace("iterations: 10, sleep_s: 0.15", "iterations: 2, sleep_s: 3.0").replace("num_samples: 6", "num_samples: 3")
    )
    proc = subprocess.Popen(
        [RAYTUNER, "run", str(spec), "--json", "--storage", str(tmp_path / "runs")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )
    _read_until(proc, "new_best", 1)  # a trial is in its loop, its next report 3 s away
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    started = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert time.monotonic() - started < 2.0  # did not wait for the trials' next reports
    folder = tmp_path / "runs" / "inline-slow"
    assert json.loads((folder / "status.json").read_text())["state"] == "interrupted"
    done = subprocess.run([RAYTUNER, "resume", str(folder), "--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    trials = pq.read_table(folder / "trials.parquet").to_pandas()
    assert len(trials) == 3 and set(trials["status"]) == {"completed"}


def test_a_time_budget_stops_the_run_and_the_median_rule_stops_trials(storage: Path) -> None:
    summary, _ = run(
        """
name: inline-budget
trainable: {builtin: analytic, iterations: 30, sleep_s: 0.05}
metric: loss
mode: min
space: {x: {uniform: [-1, 1]}}
search: {algorithm: random, num_samples: 100, seed: 2, time_budget_s: 2.5}
scheduler: {type: median, grace_period: 3, min_samples_required: 2}
execution: {backend: inline}
""",
        storage,
        num_cpus=2,
    )
    assert summary.state is RunState.COMPLETED  # a budget that runs out ends the run normally
    records = list(summary.trials.values())
    assert 2 < len(records) < 100
    assert all(r.status.finished for r in records)
    stopped = [r for r in records if r.status is TrialStatus.STOPPED]
    assert any(3 <= r.iterations < 30 for r in stopped)  # the median rule (or the budget) cut them short
    assert summary.duration_s < 30


@pytest.mark.ray
def test_a_ray_run_of_short_trials_suggests_the_inline_backend(ray_session: None, storage: Path) -> None:
    text = ASHA.replace("execution: {backend: inline}\n", "").replace("num_samples: 12", "num_samples: 8")
    summary, _ = run(text, storage)
    assert summary.hint is not None and "raytuner run --inline" in summary.hint
    # a spec the inline backend refuses gets no such hint
    refused, _ = run(text, storage, ["execution.loggers=[csv]"])
    assert refused.hint is None
