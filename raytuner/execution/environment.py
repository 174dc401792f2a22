"""Facts about where an experiment ran, written to ``environment.json`` next to its results.

``experiment.parquet`` (raytuner.results.experiment_table) is built from the same facts.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from raytuner.results import layout
from raytuner.results.remote import redact
from raytuner.spec.loader import Experiment

# Always recorded (null where missing); experiment.parquet has a column for some of them.
PACKAGES = ("raytuner", "ray", "hyperopt", "torch", "numpy", "pyarrow", "pydantic")
GIT_DIFF_LIMIT = 2**20  # bytes of a dirty tree's diff kept in git.diff
UNTRACKED_LIMIT = 200  # untracked files named in environment.json


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_packages() -> dict[str, str | None]:
    """Every distribution importable here and its version, by normalized name (``scikit-learn``).

    Read from the ``<name>-<version>.dist-info`` folder names on ``sys.path`` (the wheel format
    puts both there), the first on the path winning as it does for imports: reading every
    distribution's metadata instead costs seconds (docs/performance.md). :data:`PACKAGES` are
    always present, null when not installed.
    """
    found: dict[str, str | None] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            stem, dot, suffix = name.rpartition(".")
            distribution, dash, version = stem.partition("-")
            if dot and dash and suffix in ("dist-info", "egg-info"):
                found.setdefault(_normalized(distribution), version.partition("-")[0] or None)
    for package in PACKAGES:
        if found.get(package) is None:
            found[package] = _version(package)
    return dict(sorted(found.items()))


def _git(folder: Path, *args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=folder, capture_output=True, timeout=5, check=True).stdout


def git_revision(folder: Path) -> tuple[dict[str, Any], bytes] | None:
    """The git commit of ``folder``, whether the work tree had changes and which, if it is a repo.

    Returns:
        The facts for ``environment.json`` (commit, dirty, the diff's size and SHA-256, the
        untracked files), and the diff itself (``git diff HEAD``: tracked files' changes, staged
        or not; empty for a clean tree).
    """
    try:
        rev = _git(folder, "rev-parse", "HEAD").decode().strip()
        status = _git(folder, "status", "--porcelain", "-z").decode(errors="replace")
        diff = _git(folder, "diff", "HEAD", "--no-color", "--no-ext-diff", "--binary") if status else b""
    except (OSError, subprocess.SubprocessError):
        return None
    untracked = [line[3:] for line in status.split("\0") if line.startswith("?? ")]
    facts: dict[str, Any] = {"commit": rev, "dirty": bool(status)}
    if status:
        facts.update(
            diff_bytes=len(diff),
            diff_sha256=hashlib.sha256(diff).hexdigest(),
            diff_truncated=len(diff) > GIT_DIFF_LIMIT,
            untracked=untracked[:UNTRACKED_LIMIT],
            untracked_count=len(untracked),
        )
    return facts, diff


def memory_bytes() -> int | None:
    """Physical memory of this host, where the OS tells it."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def visible_gpus() -> list[dict[str, Any]]:
    """Name and memory of each GPU the driver may use (:func:`raytuner.execution.gpus.detect_gpus`).

    torch is asked only when it is already imported: importing it would add seconds to
    every run's start.
    """
    from raytuner.execution.gpus import detect_gpus

    inventory = detect_gpus(use_torch="torch" in sys.modules)
    return [
        {"name": device.name, "memory_bytes": None if device.memory_mib is None else device.memory_mib * 2**20}
        for device in inventory.devices
    ]


def write_environment(folder: Path, experiment: Experiment) -> None:
    """Write ``environment.json`` into ``folder``, and ``git.diff`` beside it when the working
    directory is a git repository with changes (its first :data:`GIT_DIFF_LIMIT` bytes; the
    size and hash in ``environment.json`` are of the whole diff)."""
    from raytuner.results.store import write_json_atomic

    git = git_revision(Path.cwd())
    facts = environment_facts(experiment, None if git is None else git[0])
    if git is not None and git[0]["dirty"]:
        (folder / layout.GIT_DIFF).write_bytes(git[1][:GIT_DIFF_LIMIT])
    write_json_atomic(folder / layout.ENVIRONMENT, facts)


def environment_facts(experiment: Experiment, git: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything recorded about the run's driver: versions, host, hardware, git, command.

    Args:
        experiment: the experiment run.
        git: the facts of :func:`git_revision` (of the working directory, asked now when None).
    """
    if git is None:
        revision = git_revision(Path.cwd())
        git = None if revision is None else revision[0]
    return {
        "created_at": time.time(),
        "spec_file": experiment.source,
        "command": [redact(word) for word in sys.argv],
        "working_dir": os.getcwd(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": memory_bytes(),
        "gpus": visible_gpus(),
        "packages": installed_packages(),
        "git": git,
        "seed": experiment.spec.search.seed,
    }
