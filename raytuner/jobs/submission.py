"""Submitting a checked experiment to a Ray cluster as a job.

The job is ``raytuner run SPEC --json ...`` run on the cluster, in a copy of the local
working directory (Ray uploads it without the files .gitignore names, nor .git, .venv and
local experiment folders: :func:`upload_excludes`), so the spec, data and user code travel
together. The spec is validated here first: a bad spec is refused
before anything is uploaded.
"""

from __future__ import annotations

import os
import secrets
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from raytuner.errors import Location, SpecError, UsageError
from raytuner.execution.preflight import check_placeable, trial_resources
from raytuner.jobs.client import call
from raytuner.spec.loader import Experiment

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient


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


def build_entrypoint(spec_path: str, submission: Submission) -> str:
    """The shell command the job runs on the cluster (the job sets RAY_ADDRESS for it)."""
    words = ["raytuner", "run", spec_path, "--json"]
    for override in submission.overrides:
        words += ["--set", override]
    if submission.name:
        words += ["--name", submission.name]
    if submission.storage:
        words += ["--storage", submission.storage]
    return shlex.join(words)


def check_cluster_can_place(client: JobSubmissionClient, address: str, experiment: Experiment) -> str | None:
    """Refuse, before submitting, a per-trial request no live node of the cluster can hold.

    The Jobs API shows the live nodes only, not the node types an autoscaler can start (and
    a plain ``ray start`` head reports an autoscaler status too), so this check stays on the
    live nodes; the job's own ``raytuner run`` on the head also checks the node types.

    Returns:
        A note for the user, or None (today always None).
    """
    from ray.util.state import list_nodes

    nodes = call(address, lambda: list_nodes(address=address, detail=True))
    described = [{"Resources": dict(node.resources_total), "Alive": node.state == "ALIVE"} for node in nodes]
    resources = experiment.spec.resources
    wanted = trial_resources(resources.cpu, resources.gpu, resources.custom)
    check_placeable(wanted, described, experiment.source, node_types=lambda: None)
    return None


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
    notes: list[str] | None = None,
) -> str:
    """Submit ``experiment`` as a Ray job and return its id at once.

    Args:
        client: a connected Jobs API client (:func:`raytuner.jobs.connect`).
        address: the Jobs API address, for messages.
        experiment: the spec, already validated (with the same overrides).
        submission: the spec file and the command-line changes the job repeats.
        working_dir: uploaded as the job's working directory (default: the current one).
        notes: gets what the user should know before the job runs (see :func:`check_cluster_can_place`).

    Raises:
        SpecError: relative storage, or resources no node of the cluster has.
        UsageError: the spec is outside the working directory.
    """
    root = (working_dir or Path.cwd()).resolve()
    spec_path = spec_in_working_dir(submission.spec, root)
    check_storage(experiment)
    note = check_cluster_can_place(client, address, experiment)
    if note and notes is not None:
        notes.append(note)
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
                "env_vars": {"RAY_OVERRIDE_JOB_RUNTIME_ENV": "1"},
            },
            metadata={"raytuner.experiment": experiment.spec.name},
        ),
    )
