"""What ``raytuner submit`` decides before it talks to a cluster (no Ray needed)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from raytuner.cli import app
from raytuner.errors import SpecError, UsageError
from raytuner.jobs.status import shown_entrypoint, shown_output
from raytuner.jobs.submission import (
    NOT_INSTALLED,
    Submission,
    build_entrypoint,
    check_storage,
    spec_in_working_dir,
    upload_excludes,
)
from raytuner.spec.loader import load_experiment

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "experiments" / "quickstart.yaml"
UNREACHABLE = "http://127.0.0.1:9"  # discard port: nothing answers


def test_the_entrypoint_repeats_the_command_line_changes_quoted() -> None:
    submission = Submission(Path("specs/q.yaml"), ("search.num_samples=4", "space.x1={uniform: [0, 1]}"), "wide", "/s")
    words = shlex.split(shown_entrypoint(build_entrypoint("specs/q.yaml", submission)))
    assert words == [
        "raytuner", "run", "specs/q.yaml", "--json", "--set", "search.num_samples=4",
        "--set", "space.x1={uniform: [0, 1]}", "--name", "wide", "--storage", "/s",
    ]  # fmt: skip


@pytest.mark.subprocess
def test_the_entrypoint_says_what_to_install_on_a_head_without_raytuner(tmp_path: Path) -> None:
    """The job ran `raytuner run` straight: `/bin/sh: 1: raytuner: not found` and nothing on the fix."""
    shutil.copy(QUICKSTART, tmp_path / "q.yaml")
    entrypoint = build_entrypoint("q.yaml", Submission(Path("q.yaml"), ("search.num_samples=-1",)))
    bare = {"PATH": "/usr/bin:/bin"}  # as on a node where raytuner was never installed
    without = subprocess.run(["/bin/sh", "-c", entrypoint], capture_output=True, text=True, env=bare, cwd=tmp_path)
    assert (without.returncode, without.stdout.splitlines(), without.stderr) == (2, [NOT_INSTALLED], "")
    assert "setup_commands" in NOT_INSTALLED and "cluster/README.md" in NOT_INSTALLED
    # with raytuner on the PATH the job's shell becomes `raytuner run` itself (here refusing the bad override)
    found = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin"}
    ran = subprocess.run(["/bin/sh", "-c", entrypoint], capture_output=True, text=True, env=found, cwd=tmp_path, timeout=120)
    assert ran.returncode == 2 and ran.stderr.startswith("error: ") and "num_samples" in ran.stderr, ran.stderr


def test_a_jobs_output_names_the_run_command_not_the_probe() -> None:
    """Ray's supervisor writes the entrypoint it runs into the job's output: `submit -f` to a head
    without raytuner showed the probe's shell text, the message quoted inside it, beside the message."""
    entrypoint = build_entrypoint("q.yaml", Submission(Path("q.yaml"), (), "q", "/s"))
    logs = (
        "2026-12-04 02:08:36,381\tINFO job_manager.py:581 -- Runtime env is setting up.\n"
        f"Running entrypoint for job raytuner-q-99ffc366: {entrypoint}\n{NOT_INSTALLED}\n"
    )
    shown = shown_output(logs).splitlines()
    assert shown[1] == "Running entrypoint for job raytuner-q-99ffc366: raytuner run q.yaml --json --name q --storage /s"
    assert [line for line in shown if "setup_commands" in line] == [NOT_INSTALLED]
    assert shown_output("a line\nRunning entrypoint for job x: python train.py\n") == (
        "a line\nRunning entrypoint for job x: python train.py\n"
    )  # a job not submitted by raytuner is shown as it is


def test_the_entrypoint_never_carries_credentials_of_a_storage_uri() -> None:
    """`submit --storage s3://KEY:SECRET@b/runs` put the secret into the job's command line, which
    the cluster keeps and shows (`jobs ls`, the dashboard)."""
    from raytuner.jobs.submission import leaves_credentials_out

    secret = Submission(Path("q.yaml"), ("storage=s3://k:plantedsecret@b/r?secret_key=plantedsecret",), None, "s3://k:plantedsecret@b/runs")
    entrypoint = build_entrypoint("q.yaml", secret)
    assert "plantedsecret" not in entrypoint and "s3://b/runs" in entrypoint
    assert leaves_credentials_out(secret)
    assert not leaves_credentials_out(Submission(Path("q.yaml"), ("search.num_samples=4",), None, "s3://b/runs"))


def test_the_spec_must_travel_with_the_working_directory(tmp_path: Path) -> None:
    inside = tmp_path / "exp" / "q.yaml"
    inside.parent.mkdir()
    shutil.copy(QUICKSTART, inside)
    assert spec_in_working_dir(inside, tmp_path) == "exp/q.yaml"
    with pytest.raises(UsageError, match="must be inside the working directory"):
        spec_in_working_dir(QUICKSTART, tmp_path)


@pytest.mark.parametrize(
    ("storage", "refused"), [(None, True), ("runs", True), ("/mnt/shared", False), ("s3://b/p", False), ("gs://b", False)]
)
def test_relative_storage_is_refused(storage: str | None, refused: bool) -> None:
    experiment = load_experiment(QUICKSTART, storage=storage)
    if refused:
        with pytest.raises(SpecError, match="relative path"):
            check_storage(experiment)
    else:
        check_storage(experiment)


def test_a_url_that_is_not_object_storage_is_refused() -> None:
    with pytest.raises(SpecError, match="ftp:// is not a storage raytuner can run on"):
        load_experiment(QUICKSTART, storage="ftp://host/p")


def test_a_bad_spec_is_refused_before_any_connection(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["submit", str(QUICKSTART), "--address", UNREACHABLE, "--set", "search.algorithm=hyperpot"])
    assert result.exit_code == 2, result.output
    assert "search.algorithm" in result.output and "hyperpot" in result.output
    assert "cannot reach" not in result.output  # refused locally, never sent


def test_an_unreachable_jobs_api_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["jobs", "ls", "--address", UNREACHABLE])
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [
        f"error: cannot reach the Ray Jobs API at {UNREACHABLE}: is the dashboard running there "
        "(through an SSH tunnel: `ray dashboard CLUSTER.yaml`)?"
    ]


def test_a_jobs_api_without_its_agent_yet_is_asked_again(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Right after `ray start` the Jobs API answers 500 until its agent registers: submit gave up at once."""
    from raytuner.errors import JobError
    from raytuner.jobs import client

    monkeypatch.setattr(client, "AGENT_POLL_S", 0.01)
    answers = iter(["agent", "agent", "ok"])

    def no_agent() -> str:  # what Ray's SDK raises for that answer (DashboardSDK._raise_error)
        raise RuntimeError("Request failed with status code 500: No available agent to submit job, please try again later..")

    def submit_job() -> str:
        return no_agent() if next(answers) == "agent" else "raytuner-q-1234"

    assert client.call("http://127.0.0.1:8265", submit_job) == "raytuner-q-1234"
    assert capsys.readouterr().err.count("has no agent yet") == 1

    def refused() -> str:
        raise RuntimeError("Request failed with status code 400: bad runtime_env.")

    with pytest.raises(JobError, match="refused the request: .*400"):  # other refusals are not repeated
        client.call("http://127.0.0.1:8265", refused)
    monkeypatch.setattr(client, "AGENT_WAIT_S", 0.0)
    with pytest.raises(JobError, match="No available agent"):  # nor is this one past the wait
        client.call("http://127.0.0.1:8265", no_agent)


def test_rays_sdk_logs_only_with_verbose() -> None:
    import logging

    from raytuner.errors import JobError
    from raytuner.jobs.client import SDK_LOGGERS, connect

    for verbose, level in ((True, logging.INFO), (False, logging.WARNING)):
        with pytest.raises(JobError):
            connect(UNREACHABLE, verbose=verbose)
        assert {logging.getLogger(name).level for name in SDK_LOGGERS} == {level}
    assert logging.getLogger("ray.dashboard.modules.dashboard_sdk").getEffectiveLevel() == logging.WARNING


def test_the_upload_leaves_out_git_the_virtualenv_and_experiment_folders(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    (tmp_path / "shared" / "runs").mkdir(parents=True)
    assert upload_excludes(tmp_path, str(tmp_path / "shared" / "runs")) == ["/.git/", "/.venv/", "/runs/", "/shared/runs/"]
    assert upload_excludes(tmp_path, "s3://bucket/runs") == ["/.git/", "/.venv/", "/runs/"]
    assert upload_excludes(tmp_path / "runs", "/elsewhere") == ["/.git/", "/.venv/"]  # never the working dir itself


def test_jobs_status_help_says_what_it_exits_with() -> None:
    result = CliRunner().invoke(app, ["jobs", "status", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "its driver's exit code (1 when it has none)" in " ".join(result.output.split())
