"""Facts about where an experiment ran, written to ``environment.json`` next to its results.

``experiment.parquet`` (raytuner.results.experiment_table) is built from the same facts.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from raytuner.results.remote import redact
from raytuner.spec.loader import Experiment

PACKAGES = ("raytuner", "ray", "hyperopt", "torch", "numpy", "pyarrow", "pydantic")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def git_revision(folder: Path) -> dict[str, Any] | None:
    """The git commit of ``folder`` and whether the work tree had changes, if it is a repo."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=folder, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": rev, "dirty": bool(dirty)}


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


def environment_facts(experiment: Experiment) -> dict[str, Any]:
    """Everything recorded about the run's driver: versions, host, hardware, git, command."""
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
        "packages": {name: _version(name) for name in PACKAGES},
        "git": git_revision(Path.cwd()),
        "seed": experiment.spec.search.seed,
    }
