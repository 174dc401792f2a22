"""Submitting a checked experiment to a Ray cluster as a job.

The job is ``raytuner run SPEC --json ...`` run on the cluster, in a copy of the local
working directory (Ray uploads it without the files .gitignore names, nor .git, .venv and
local experiment folders: :func:`upload_excludes`), so the spec, data and user code travel
together. The spec is validated here first: a bad spec is refused
before anything is uploaded. Whether the cluster can hold a trial is the job's own check on the
head, which knows the node types the cluster's autoscaler can start: when no live node holds
one, ``submit`` waits for that answer (:func:`watch_start`).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raytuner.errors import JobRefusedError, Location, SpecError, UsageError
from raytuner.execution.preflight import live_node_holds, show_resources, trial_resources
from raytuner.jobs.client import call
from raytuner.jobs.status import get_job, job_logs
from raytuner.results.remote import redact
from raytuner.spec.loader import Experiment

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

# How long ``submit`` waits for the job's own check when no live node holds one trial: the
# job's start on the head (the upload, a fresh Python, joining Ray) takes a few seconds.
START_WATCH_S = 120.0
# How long Ray's job supervisor waits, after ``jobs stop`` sent SIGTERM, before it sends SIGKILL
# (Ray's default is 3 s): the run stops its trials, saves, and ends ``interrupted`` in that time.
JOB_STOP_WAIT_S = 60


@dataclass(frozen=True)
class Submission:
    """What to run on the cluster: the spec and the command-line changes to it."""

    spec: Path
    overrides: tuple[str, ...] = ()
    name: str | None = None
    storage: str | None = None


def spec_in_working_dir(spec: Path, working_dir: Path) -> str:
    """The spec's path inside the uploaded working directory.

    Raises:
        UsageError: the spec lies outside it, so the cluster would not get it.
    """
    real, root = spec.resolve(), working_dir.resolve()
    if not real.is_relative_to(root):
        raise UsageError(
            f"{spec}: the spec must be inside the working directory ({root}), which is what the job "
            "gets; run raytuner submit from the project folder that holds it"
        )
    return real.relative_to(root).as_posix()


def check_storage(experiment: Experiment) -> None:
    """Refuse a relative storage root: on the cluster it would land in the job's temporary copy.

    Raises:
        SpecError: naming the storage and what to give instead.
    """
    storage = experiment.spec.storage
    if "://" in storage or os.path.isabs(os.path.expanduser(storage)):
        return
    raise SpecError(
        f"{storage!r} is a relative path: on the cluster it would be inside the job's temporary copy of the "
        "working directory and lost with it; give --storage an absolute path every node shares "
        "(e.g. /mnt/shared/raytuner-runs)",
        Location(experiment.source, None, "storage"),
    )


# What the job says, in raytuner's one-line error form, on a head without the raytuner command.
NOT_INSTALLED = (
    "error: the cluster's head node has no `raytuner` command on its PATH: install raytuner (the same version) "
    "on every node, e.g. in the cluster config's setup_commands (cluster/README.md, 2. Start the cluster)"
)
NOT_INSTALLED_EXIT = 2


def build_entrypoint(spec_path: str, submission: Submission) -> str:
    """The shell command the job runs on the cluster (the job sets RAY_ADDRESS for it).

    It checks first that the head has the ``raytuner`` command, and says what to install where
    if not (``/bin/sh: 1: raytuner: not found`` said nothing of the fix).
    """
    probe = f"command -v raytuner >/dev/null || {{ echo {shlex.quote(NOT_INSTALLED)}; exit {NOT_INSTALLED_EXIT}; }}"
    return f"{probe}; exec {_run_command(spec_path, submission)}"


def _run_command(spec_path: str, submission: Submission) -> str:
    """``raytuner run`` with the command-line changes, without the credentials of any URI in
    them: the job's command line is kept and shown by the cluster (``jobs ls``, its dashboard),
    and its nodes reach the bucket with credentials of their own."""
    words = ["raytuner", "run", spec_path, "--json"]
    for override in submission.overrides:
        words += ["--set", override]
    if submission.name:
        words += ["--name", submission.name]
    if submission.storage:
        words += ["--storage", submission.storage]
    return shlex.join(redact(word) for word in words)


def leaves_credentials_out(submission: Submission) -> bool:
    """Whether the job's command line lost credentials that the user's command line had."""
    given = [*submission.overrides, submission.storage or ""]
    return any(redact(word) != word for word in given)


def unmet_request(client: JobSubmissionClient, address: str, experiment: Experiment) -> dict[str, float] | None:
    """One trial's request when no live node of the cluster holds it (None when one does).

    Such a spec is not refused here: the Jobs API shows the live nodes only, not the node
    types an autoscaler can start (a cluster from ``cluster/aws.yaml`` has no worker until a
    trial asks for one). The job's ``raytuner run`` on the head knows them, and decides:
    :func:`watch_start` waits for its answer.
    """
    from ray.util.state import list_nodes

    nodes = call(address, lambda: list_nodes(address=address, detail=True))
    described = [{"Resources": dict(node.resources_total), "Alive": node.state == "ALIVE"} for node in nodes]
    resources = experiment.spec.resources
    wanted = trial_resources(resources.cpu, resources.gpu, resources.custom)
    return None if live_node_holds(wanted, described) else wanted


def watch_start(
    client: JobSubmissionClient,
    address: str,
    job_id: str,
    wanted: Mapping[str, float],
    *,
    deadline_s: float = START_WATCH_S,
    poll_s: float = 1.0,
) -> str | None:
    """Wait until the job's ``raytuner run`` accepts a request no live node holds (the
    cluster's autoscaler can start a node type that does) or refuses it.

    Returns:
        A note for the user: the node type the job waits for, or that it had not answered
        within ``deadline_s``; None when a live node came meanwhile.

    Raises:
        JobRefusedError: the job ended before its first trial; its one-line reason, its exit code.
    """
    end = time.monotonic() + deadline_s
    while True:
        row = get_job(client, address, job_id)
        logs = job_logs(client, address, job_id)
        started = _started_event(logs)
        if started is not None:
            awaits = started.get("awaits_node")
            return f"job {job_id}: {awaits['line']}" if isinstance(awaits, dict) else None
        if row.status == "SUCCEEDED":  # done before this look (a run with nothing left to do)
            return None
        if row.finished:
            first_line = (row.message or "").strip().splitlines()[:1]
            reason = _error_line(logs) or f"it ended {row.status} before its first trial: {''.join(first_line) or 'no output'}"
            raise JobRefusedError(
                f"{reason} (job {job_id} on the cluster; `raytuner jobs logs {job_id} --address {address}` shows "
                "its output)",
                row.exit_code,
            )
        if time.monotonic() >= end:
            return (
                f"no live node holds one trial ({show_resources(wanted)}); job {job_id} has not said within "
                f"{deadline_s:g} s whether its autoscaler can start one that does: "
                f"`raytuner jobs logs {job_id} --address {address} --follow`"
            )
        time.sleep(poll_s)


def _started_event(logs: str) -> dict[str, Any] | None:
    """The experiment_started event in a job's output (``raytuner run --json``), if it came."""
    for line in logs.splitlines():
        if line.startswith("{") and '"experiment_started"' in line:
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict) and event.get("event") == "experiment_started":
                    return event
    return None


def _error_line(logs: str) -> str | None:
    """raytuner's one-line error in a job's output, without its ``error: `` prefix."""
    errors = [line.removeprefix("error: ").strip() for line in logs.splitlines() if line.startswith("error: ")]
    return errors[-1] if errors else None


def upload_excludes(root: Path, storage: str) -> list[str]:
    """What the job's upload leaves out besides .gitignore: Git's history, a virtualenv, and
    experiment folders (the storage root and a local ``runs`` folder) inside the working directory."""
    excludes = ["/.git/", "/.venv/"]
    roots = [root / "runs"]
    if "://" not in storage:
        roots.append(Path(os.path.expanduser(storage)))
    for folder in roots:
        real = folder.resolve()
        if real != root and real.is_relative_to(root) and real.is_dir():
            excludes.append(f"/{real.relative_to(root).as_posix()}/")
    return list(dict.fromkeys(excludes))


def submit(
    client: JobSubmissionClient,
    address: str,
    experiment: Experiment,
    submission: Submission,
    working_dir: Path | None = None,
) -> str:
    """Submit ``experiment`` as a Ray job and return its id at once.

    Args:
        client: a connected Jobs API client (:func:`raytuner.jobs.connect`).
        address: the Jobs API address, for messages.
        experiment: the spec, already validated (with the same overrides).
        submission: the spec file and the command-line changes the job repeats.
        working_dir: uploaded as the job's working directory (default: the current one).

    Raises:
        SpecError: relative storage.
        UsageError: the spec is outside the working directory.
    """
    root = (working_dir or Path.cwd()).resolve()
    spec_path = spec_in_working_dir(submission.spec, root)
    check_storage(experiment)
    job_id = f"raytuner-{experiment.spec.name}-{secrets.token_hex(4)}"
    return call(
        address,
        lambda: client.submit_job(
            entrypoint=build_entrypoint(spec_path, submission),
            submission_id=job_id,
            # raytuner run joins the cluster with a runtime env of its own (the same working
            # directory, its import path); Ray refuses the overlap unless told to combine them
            runtime_env={
                "working_dir": str(root),
                "excludes": upload_excludes(root, experiment.spec.storage),
                "env_vars": {"RAY_OVERRIDE_JOB_RUNTIME_ENV": "1", "RAY_JOB_STOP_WAIT_TIME_S": str(JOB_STOP_WAIT_S)},
            },
            metadata={"raytuner.experiment": experiment.spec.name},
        ),
    )
