"""Reading experiment folders back: the list under a storage root, and the best trials."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raytuner.errors import ExperimentError
from raytuner.results import layout


@dataclass(frozen=True)
class ExperimentInfo:
    name: str
    folder: str  # a local path, or a URI on object storage
    state: str
    metric: str | None
    mode: str | None
    trials: dict[str, int]
    best: float | None
    started_at: float | None
    duration_s: float | None
    front: int | None = None  # several objectives: trials on the Pareto front (best is then None)


def list_experiments(storage: str) -> list[ExperimentInfo]:
    """Every experiment folder directly under the storage root ``storage`` (a folder or a URI), oldest first."""
    from raytuner.results import remote

    if remote.is_uri(storage):
        found = _remote_infos(remote.Remote.parse(storage))
    else:
        root = layout.storage_root(storage)
        folders = [f for f in root.iterdir() if f.is_dir() and layout.is_experiment(f)] if root.is_dir() else []
        found = [_info(folder.name, str(folder), read_status(folder)) for folder in folders]
    return sorted(found, key=lambda info: (info.started_at or 0.0, info.name))


def _remote_infos(root: Any) -> list[ExperimentInfo]:
    """Experiments on object storage, from each folder's status.json (nothing else is fetched)."""
    import posixpath

    import pyarrow.fs as pafs

    from raytuner.errors import UsageError

    try:
        infos = root.fs.get_file_info(pafs.FileSelector(root.path, allow_not_found=True))
        found = []
        for info in infos:
            if info.type != pafs.FileType.Directory:
                continue
            status_path = posixpath.join(info.path, layout.STATUS)
            if root.fs.get_file_info(status_path).type != pafs.FileType.File:
                continue
            with root.fs.open_input_stream(status_path) as stream:
                status = _parse_status(stream.read())
            name = posixpath.basename(info.path)
            found.append(_info(name, f"{root.uri}/{name}", status))
        return found
    except OSError as exc:
        raise UsageError(f"cannot list {root.uri}: {str(exc).strip().splitlines()[0]}") from exc


def _info(name: str, folder: str, status: dict[str, Any]) -> ExperimentInfo:
    best = status.get("best") or {}
    return ExperimentInfo(
        name=name,
        folder=folder,
        state=_state(status),
        metric=status.get("metric"),
        mode=status.get("mode"),
        trials={k: int(v) for k, v in (status.get("trials") or {}).items()},
        best=best.get("value"),
        started_at=status.get("started_at"),
        duration_s=status.get("duration_s"),
        front=(status.get("front") or {}).get("size") if isinstance(status.get("front"), dict) else None,
    )


CRASHED = "crashed?"


def _state(status: dict[str, Any]) -> str:
    """The recorded state; ``crashed?`` for a run still marked running whose driver process
    is gone (known only on the driver's own host, from ``driver`` in status.json)."""
    state = str(status.get("state", "unknown"))
    driver = status.get("driver")
    if state != "running" or not isinstance(driver, dict):
        return state
    pid, host = driver.get("pid"), driver.get("hostname")
    if not isinstance(pid, int) or host != socket.gethostname():
        return state
    return state if _alive(pid) else CRASHED


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def read_status(folder: Path) -> dict[str, Any]:
    path = folder / layout.STATUS
    if not path.is_file():
        return {}
    try:
        return _parse_status(path.read_bytes())
    except OSError:
        return {"state": "unreadable"}


def _parse_status(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError:
        return {"state": "unreadable"}
    return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class RankedTrial:
    trial_id: str
    status: str
    value: float
    iteration: int | None
    config: dict[str, Any]


def best_trials(folder: Path, n: int = 1) -> tuple[str, str, list[RankedTrial]]:
    """The ``n`` best trials of an experiment (metric, mode, trials best first).

    Raises:
        ExperimentError: the trials table is missing or unreadable.
    """
    import pyarrow.parquet as pq

    path = folder / layout.TRIALS
    if not path.is_file():
        raise ExperimentError(f"{folder}: no {layout.TRIALS} (did the experiment start any trial?)")
    try:
        table = pq.read_table(path, columns=["trial_id", "status", "metric_best", "metric_best_iteration", "config_json"])
        meta = pq.read_schema(path).metadata or {}
    except Exception as exc:  # noqa: BLE001 - any read failure is the same problem to the user
        raise ExperimentError(f"{path}: cannot read the trials table: {exc}") from exc
    metric = meta.get(b"raytuner.metric", b"?").decode()
    mode = meta.get(b"raytuner.mode", b"min").decode()
    rows = [row for row in table.to_pylist() if row["metric_best"] is not None]
    rows.sort(key=lambda row: row["metric_best"], reverse=mode == "max")
    ranked = [
        RankedTrial(
            row["trial_id"], row["status"], row["metric_best"], row["metric_best_iteration"], json.loads(row["config_json"])
        )
        for row in rows[:n]
    ]
    return metric, mode, ranked
