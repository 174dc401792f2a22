"""``experiment.parquet``: one row describing the experiment, for the same tools as its results.

Written when a run starts (before any trial) and replaced atomically whenever its state
changes (at the end; again by ``resume`` and ``extend``), so ``status`` and ``ended_at`` stay
true. The facts about the driver (versions, host, hardware, git, command) are those
``environment.json`` records, read from it: they describe where the experiment was started.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raytuner.results import layout
from raytuner.results.schema import EXPERIMENT_COLUMNS, SCHEMA_VERSION, fixed_schema

if TYPE_CHECKING:
    import pyarrow as pa

    from raytuner.spec.loader import Experiment


def experiment_row(
    experiment: Experiment,
    facts: Mapping[str, Any],
    state: str,
    started_at: float,
    ended_at: float | None = None,
    error: str | None = None,
    folder: str | None = None,
) -> dict[str, Any]:
    """The row of ``experiment.parquet``: the spec, its state and the ``environment.json`` facts."""
    import yaml

    spec = experiment.spec
    resolved = experiment.resolved()
    packages = facts.get("packages") or {}
    git = facts.get("git") or {}
    gpus = facts.get("gpus")
    command = facts.get("command")
    return {
        "name": spec.name,
        "folder": folder,
        "status": state,
        "started_at": _time(started_at),
        "ended_at": _time(ended_at),
        "error": error,
        "metric": spec.metric,
        "mode": spec.mode.value,
        "algorithm": spec.search.algorithm.value,
        "scheduler": spec.scheduler.type.value,
        "seed": spec.search.seed,
        "num_samples": spec.search.num_samples,
        "spec_file": facts.get("spec_file"),
        "spec_yaml": yaml.safe_dump(resolved, sort_keys=False),
        "spec_json": json.dumps(resolved, sort_keys=False),
        "raytuner_version": packages.get("raytuner"),
        "ray_version": packages.get("ray"),
        "torch_version": packages.get("torch"),
        "numpy_version": packages.get("numpy"),
        "pyarrow_version": packages.get("pyarrow"),
        "python_version": facts.get("python"),
        "platform": facts.get("platform"),
        "hostname": facts.get("hostname"),
        "cpu_count": facts.get("cpu_count"),
        "memory_bytes": facts.get("memory_bytes"),
        "gpu_count": None if gpus is None else len(gpus),
        "gpu_names": [gpu.get("name") for gpu in gpus] if gpus else None,
        "gpu_memory_bytes": [gpu.get("memory_bytes") for gpu in gpus] if gpus else None,
        "git_commit": git.get("commit"),
        "git_dirty": git.get("dirty"),
        "working_dir": facts.get("working_dir"),
        "command": shlex.join(str(arg) for arg in command) if isinstance(command, list) else command,
    }


def experiment_schema(metric: str, mode: str) -> pa.Schema:
    return fixed_schema(EXPERIMENT_COLUMNS).with_metadata(
        {
            b"raytuner.schema_version": str(SCHEMA_VERSION).encode(),
            b"raytuner.metric": metric.encode(),
            b"raytuner.mode": mode.encode(),
        }
    )


def write_experiment_table(
    folder: Path,
    experiment: Experiment,
    state: str,
    started_at: float,
    ended_at: float | None = None,
    error: str | None = None,
) -> Path:
    """Replace ``folder``'s ``experiment.parquet`` (atomically) with the experiment's row now.

    The driver's facts come from ``folder``'s ``environment.json``; without it (a folder from
    an older raytuner) they are null.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    facts: Mapping[str, Any] = {}
    source = folder / layout.ENVIRONMENT
    if source.is_file():
        try:
            facts = json.loads(source.read_text())
        except (OSError, ValueError):
            facts = {}
    spec = experiment.spec
    row = experiment_row(experiment, facts, state, started_at, ended_at, error, folder.name)
    schema = experiment_schema(spec.metric, spec.mode.value)
    table = pa.Table.from_pylist([row], schema=schema)
    path = folder / layout.EXPERIMENT
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def _time(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)
