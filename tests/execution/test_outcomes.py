"""How a run ends and what its exit code says: failed trials, failure.max_failed_trials,
resume and extend, on the inline backend and once on Ray and once as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from raytuner.cli import app
from raytuner.errors import ExitCode

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
runner = CliRunner()


def spec(
    folder: Path, trainable: str, xs: list[float], *, inline: bool = True, extra: str = "", search: str | None = None
) -> Path:
    """A grid over ``x`` (or ``search`` over x in [0.1, 0.4]) for a function of
    tests/fixtures/user_trainables.py, stored under ``folder/runs``."""
    path = folder / f"{trainable}.yaml"
    path.write_text(
        f"""
name: {trainable.replace("_", "-")}
trainable: {{function: "user_trainables:{trainable}"}}
metric: loss
mode: min
space: {{x: {"{uniform: [0.1, 0.4]}" if search else f"{{grid: {xs}}}"}}}
search: {search or "{algorithm: grid}"}
storage: {folder / "runs"}
{"execution: {backend: inline}" if inline else ""}
{extra}
"""
    )
    return path


def strict(text: str) -> Any:
    """JSON as strict parsers read it: NaN and Infinity are refused."""

    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), env={"COLUMNS": "250"})


def trials_of(folder: Path) -> dict[float, dict[str, Any]]:
    import pyarrow.parquet as pq

    rows = pq.read_table(folder / "trials.parquet").to_pylist()
    return {json.loads(row["config_json"])["x"]: row for row in rows}


def test_a_run_with_failed_trials_exits_3_and_says_where_their_errors_are(tmp_path: Path) -> None:
    """3 of 6 trials raise after reporting the lowest losses: the run completes, exits 3, and
    no summary, ``best``, ``ls`` or ``compare`` takes a failed trial's loss for the best."""
    path = spec(tmp_path, "fails_after_reporting", [0.01, 0.2, 0.4, 0.6, 0.8, 1.0])
    result = invoke("run", str(path), "--cpus", "2")
    assert result.exit_code == ExitCode.TRIALS_FAILED, result.output + result.stderr
    out = result.stdout
    assert "3 of 6 trials failed; their errors: raytuner show " in out
    assert "--where 'status == \"error\"'" in out
    assert "best loss = 0.6 " in out and "0.01" not in out.split("top 3 of 6")[1].split("completed in")[0]
    runs = str(tmp_path / "runs")
    folder = tmp_path / "runs" / "fails-after-reporting"
    status = json.loads((folder / "status.json").read_text())
    assert status["state"] == "completed" and status["best"]["value"] == 0.6

    best = strict(invoke("best", "fails-after-reporting", "--storage", runs, "-f", "json").stdout)
    assert best["loss"] == 0.6 and best["status"] == "completed"
    every = strict(invoke("best", "fails-after-reporting", "--storage", runs, "-f", "json", "-n", "6", "--include-failed").stdout)
    assert [row["loss"] for row in every] == [0.01, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert [row["status"] for row in every[:3]] == ["error"] * 3
    listed = strict(invoke("ls", "--storage", runs, "--json").stdout)
    assert listed[0]["best"] == 0.6
    compared = strict(invoke("compare", "fails-after-reporting", "fails-after-reporting", "--storage", runs, "--json").stdout)
    assert compared["left"]["best_value"] == 0.6
    from raytuner.results.report import best_so_far
    from raytuner.results.report.data import load

    data = load(folder)
    assert data.best_trial is not None and data.best_trial.config == {"x": 0.6}
    assert "final 0.6 by trial" in getattr(best_so_far.chart(data), "caption", "")

    # the command the summary names lists the failed trials with their errors
    shown = strict(invoke("show", str(folder), "--where", 'status == "error"', "--json").stdout)
    assert sorted(row["config/x"] for row in shown) == [0.01, 0.2, 0.4]
    assert all("RuntimeError" in row["error"] for row in shown)


def test_a_run_whose_every_trial_failed_has_no_best_and_resume_and_extend_exit_alike(tmp_path: Path) -> None:
    path = spec(tmp_path, "fails_after_reporting", [], search="{algorithm: random, num_samples: 2, seed: 1}")
    result = invoke("run", str(path), "--cpus", "2", "--json")
    assert result.exit_code == ExitCode.TRIALS_FAILED, result.output + result.stderr
    finished = strict(result.stdout.splitlines()[-1])
    assert finished["state"] == "completed" and finished["best"] is None
    assert finished["failed"] == 2 and finished["trials"]["error"] == 2
    assert "status == \\\"error\\\"" in result.stdout.splitlines()[-1]  # the errors' command, JSON-quoted
    runs = str(tmp_path / "runs")
    best = invoke("best", "fails-after-reporting", "--storage", runs)
    assert best.exit_code == ExitCode.FAILURE and "--include-failed" in best.stderr

    # extend and resume exit on the same basis: the experiment holds failed trials
    extended = invoke("extend", "fails-after-reporting", "--storage", runs, "-n", "1", "--json")
    assert extended.exit_code == ExitCode.TRIALS_FAILED, extended.output + extended.stderr
    finished = strict(extended.stdout.splitlines()[-1])
    assert finished["state"] == "completed" and finished["failed"] == 3
    assert finished["exit_code"] == ExitCode.TRIALS_FAILED
    resumed = invoke("resume", "fails-after-reporting", "--storage", runs, "--retry-errored")
    assert resumed.exit_code == ExitCode.TRIALS_FAILED, resumed.output + resumed.stderr


@pytest.mark.parametrize("limit", ["1", "0.2"])  # a count, and a fraction of the 6 trials (1.2: more than 1)
def test_more_failed_trials_than_max_failed_trials_end_the_run_failed(tmp_path: Path, limit: str) -> None:
    """x=0.6 runs for 20 s; 0.1 and 0.2 fail at once beside it: the second failure exceeds the
    limit, no other trial starts and the running one is stopped."""
    path = spec(tmp_path, "slow_unless_failing", [0.6, 0.1, 0.2, 0.7, 0.8, 0.9])
    result = invoke("run", str(path), "--cpus", "2", "--set", f"failure.max_failed_trials={limit}")
    assert result.exit_code == ExitCode.FAILURE, result.output + result.stderr
    assert "error: 2 trials failed, more than failure.max_failed_trials allows: 1" in result.stderr
    assert "2 of 3 trials failed; their errors: raytuner show" in result.stdout
    folder = tmp_path / "runs" / "slow-unless-failing"
    status = json.loads((folder / "status.json").read_text())
    assert status["state"] == "failed" and "max_failed_trials" in status["error"]
    trials = trials_of(folder)
    assert sorted(trials) == [0.1, 0.2, 0.6]  # none started after the limit was exceeded
    assert trials[0.6]["status"] == "stopped" and trials[0.6]["iterations"] < 200

    # resumed as it is, it fails again at once and starts no trial (resume --retry-errored runs the failed ones)
    resumed = invoke("resume", str(folder))
    assert resumed.exit_code == ExitCode.FAILURE, resumed.output + resumed.stderr
    assert sorted(trials_of(folder)) == [0.1, 0.2, 0.6]


def test_a_failure_limit_counts_trials_failed_beyond_it() -> None:
    from raytuner.execution.stopper import FailureLimit
    from raytuner.spec.models import FailureSpec

    half = FailureLimit.of(FailureSpec(max_failed_trials=0.5), 7)
    assert half.allowed == 3 and not half.exceeded(3) and half.exceeded(4)
    assert "4 trials failed, more than failure.max_failed_trials allows: 3 (0.5 of 7 trials)" in half.reason(4)
    fast = FailureLimit.of(FailureSpec(fail_fast=True, max_failed_trials=5), 7)  # fail_fast: the first failure
    assert fast.exceeded(1) and "failure.fail_fast allows: 0" in fast.reason(1)
    assert not FailureLimit.of(FailureSpec(), 7).exceeded(7)


@pytest.mark.parametrize("value", ["-1", "1.0", "1.5", "true", "many"])
def test_max_failed_trials_is_a_count_or_a_fraction(tmp_path: Path, value: str) -> None:
    path = spec(tmp_path, "fails_after_reporting", [0.1])
    result = invoke("validate", str(path), "--set", f"failure.max_failed_trials={value}")
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "failure.max_failed_trials: expected a number of trials" in result.stderr
    assert result.stderr.strip().count("\n") == 0


@pytest.mark.ray
@pytest.mark.slow
def test_the_ray_backend_ends_a_run_failed_past_max_failed_trials(ray_session: None, tmp_path: Path) -> None:
    path = spec(tmp_path, "slow_unless_failing", [0.6, 0.1, 0.7], inline=False, extra="failure: {max_failed_trials: 0}")
    result = invoke("run", str(path), "--json")
    assert result.exit_code == ExitCode.FAILURE, result.output + result.stderr
    finished = strict(result.stdout.splitlines()[-1])
    assert finished["state"] == "failed" and finished["failed"] == 1 and finished["exit_code"] == ExitCode.FAILURE
    trials = trials_of(Path(finished["folder"]))
    assert trials.pop(0.1)["status"] == "error"
    # 0.6 (20 s long), if it had started, and 0.7 were stopped, not run to their end
    assert all(row["status"] == "stopped" and row["iterations"] < 200 for row in trials.values()), trials


@pytest.mark.ray
@pytest.mark.slow
def test_the_ray_backend_ends_a_spent_time_budget_completed_with_its_cut_trials_stopped(
    ray_session: None, tmp_path: Path
) -> None:
    """Ray ends the trials still going when the budget is spent without a callback: they were
    left `running` and the run ended `interrupted` (exit 130), as if Ctrl-C had stopped it."""
    path = spec(tmp_path, "slow_unless_failing", [0.6, 0.7], inline=False)
    path.write_text(path.read_text().replace("search: {algorithm: grid}", "search: {algorithm: grid, time_budget_s: 10}"))
    result = invoke("run", str(path), "--json")
    assert result.exit_code == ExitCode.OK, result.output + result.stderr
    finished = strict(result.stdout.splitlines()[-1])
    assert finished["state"] == "completed", finished
    trials = trials_of(Path(finished["folder"]))
    assert trials and all(row["status"] == "stopped" and row["iterations"] < 200 for row in trials.values()), trials


@pytest.mark.ray
@pytest.mark.slow
def test_a_failed_ray_run_resumed_with_retry_errored_runs_its_failed_trials(ray_session: None, tmp_path: Path) -> None:
    marker = tmp_path / "tried"
    extra = f"failure: {{max_failed_trials: 0}}\nspace: {{x: {{grid: [0.3]}}, marker: {str(marker)!r}}}"
    path = spec(tmp_path, "fails_once", [], inline=False)
    path.write_text(path.read_text().replace("space: {x: {grid: []}}", extra))
    failed = invoke("run", str(path))
    assert failed.exit_code == ExitCode.FAILURE, failed.output + failed.stderr
    resumed = invoke("resume", "fails-once", "--storage", str(tmp_path / "runs"), "--retry-errored", "--json")
    assert resumed.exit_code == ExitCode.OK, resumed.output + resumed.stderr
    finished = strict(resumed.stdout.splitlines()[-1])
    assert finished["state"] == "completed" and finished["failed"] == 0 and finished["best"]["value"] == 0.3


@pytest.mark.subprocess
@pytest.mark.slow
def test_the_installed_command_exits_3_when_trials_failed(tmp_path: Path) -> None:
    path = spec(tmp_path, "fails_after_reporting", [0.1, 0.9])
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = os.pathsep.join([str(FIXTURES), env.get("PYTHONPATH", "")]).strip(os.pathsep)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "raytuner"), "run", str(path), "--cpus", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == ExitCode.TRIALS_FAILED, done.stdout + done.stderr
    assert "1 of 2 trials failed" in done.stdout
