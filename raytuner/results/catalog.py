"""Reading experiment folders back: the list under a storage root, and the best trials."""

from __future__ import annotations

import json
import math
import os
import socket
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raytuner.errors import ExperimentError, UsageError
from raytuner.results import layout
from raytuner.results.records import rankable

if TYPE_CHECKING:
    import pyarrow as pa

    from raytuner.results.folder import Folder


RAY_TUNE = "ray-tune"  # ExperimentInfo.kind of a plain Ray Tune folder (reader.FolderKind's value)


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
    kind: str = "raytuner"  # or "ray-tune": a plain Ray Tune folder (FolderKind's values)
    so_far: bool = False  # an unfinished run: counts, best and duration read from its trials table now


def list_experiments(storage: str) -> list[ExperimentInfo]:
    """Every experiment folder directly under the storage root ``storage`` (a folder or a URI),
    raytuner's and plain Ray Tune's, oldest first.

    Raises:
        UsageError: ``storage`` is not a folder (missing, a file) or cannot be listed.
    """
    from raytuner.results.folder import first_line

    root = _root(storage)
    found = []
    try:
        for name, is_dir in root.entries():
            if is_dir:
                info = folder_info(root.child(name))
                if info is not None:
                    found.append(info)
    except OSError as exc:
        raise UsageError(f"cannot list {root.display}: {first_line(exc)}") from exc
    return sorted(found, key=lambda info: (info.started_at or 0.0, info.name))


def _root(storage: str) -> Folder:
    from raytuner.results.folder import Folder, is_uri

    if is_uri(storage):
        return Folder.parse(storage)  # shown without the credentials it may carry
    root = layout.storage_root(storage)
    if not root.exists():
        raise UsageError(f"--storage {storage}: no folder {root}; expected a folder holding experiment folders")
    if not root.is_dir():
        raise UsageError(f"--storage {storage}: {root} is a file; expected a folder holding experiment folders")
    return Folder.local(root)


def folder_info(folder: Folder) -> ExperimentInfo | None:
    """What ``ls`` shows of one folder; None when it is no experiment (raytuner's or Ray Tune's)."""
    names = dict(folder.entries())
    if layout.STATUS in names or layout.SPEC in names:
        status = _read_status_at(folder) if layout.STATUS in names else {}
        info = _info(folder.name, folder.display, status)
        unfinished = status.get("state") == "running" or not any(info.trials.values())
        if unfinished and names.get(layout.TRIALS) is False:
            info = _progress(info, folder)
        return info
    states = sorted(n for n, is_dir in names.items() if not is_dir and _is_ray_state(n))
    if states:
        return _ray_tune_info(folder, states[-1])
    return None


def _is_ray_state(name: str) -> bool:
    return name.startswith("experiment_state-") and name.endswith(".json")


def _read_status_at(folder: Folder) -> dict[str, Any]:
    try:
        return _parse_status(folder.read_bytes(layout.STATUS))
    except OSError:
        return {"state": "unreadable"}


def _progress(info: ExperimentInfo, folder: Folder) -> ExperimentInfo:
    """``info`` of a run still marked running (status.json is written at its start and end):
    trials by state, best and duration so far, from the trials table it keeps up to date."""
    import pyarrow as pa

    from raytuner.results.pareto import PARETO_COLUMN, objectives_of, with_pareto

    try:
        table = folder.read_table(layout.TRIALS)
    except (OSError, pa.ArrowException):  # replaced atomically, so unreadable means damaged: show status alone
        return info
    meta = table.schema.metadata or {}
    metric = info.metric or meta.get(b"raytuner.metric", b"").decode() or None
    mode = info.mode or meta.get(b"raytuner.mode", b"min").decode()
    wanted = ("status", "metric_best", "started_at", "ended_at", "time_total_s")
    rows = table.select([c for c in wanted if c in table.column_names]).to_pylist()
    counts: dict[str, int] = {}
    for row in rows:
        counts[str(row.get("status"))] = counts.get(str(row.get("status")), 0) + 1
    scored = [r["metric_best"] for r in rows if rankable(str(r.get("status")), r.get("metric_best"))]
    best = (max if mode == "max" else min)(scored) if scored else None
    front = None
    if objectives_of(meta):
        best, front = None, sum(1 for flag in with_pareto(table).column(PARETO_COLUMN).to_pylist() if flag)
    duration = None
    if info.started_at is not None:
        end = _latest(rows) if info.state == CRASHED else time.time()
        duration = None if end is None else max(0.0, end - info.started_at)
    return replace(info, metric=metric, mode=mode, trials=counts, best=best, front=front, duration_s=duration, so_far=True)


def _latest(rows: list[dict[str, Any]]) -> float | None:
    """The last moment the trials table knows of: a trial's end, or its start plus its run time."""
    times = []
    for row in rows:
        ended, started = row.get("ended_at"), row.get("started_at")
        if isinstance(ended, datetime):
            times.append(ended.timestamp())
        if isinstance(started, datetime):
            times.append(started.timestamp() + float(row.get("time_total_s") or 0.0))
    return max(times) if times else None


def _ray_tune_info(folder: Folder, state_file: str) -> ExperimentInfo:
    """A plain Ray Tune folder from its newest experiment state (JSON; Ray's pickles are not read).

    Ray records no mode outside its pickles, so no best is shown: ``show``/``best`` take --mode.
    """
    from raytuner.results.ray_folder import ray_status

    try:
        data = folder.read_json(state_file)
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict):
        return ExperimentInfo(folder.name, folder.display, "unreadable", None, None, {}, None, None, None, kind=RAY_TUNE)
    counts: dict[str, int] = {}
    latest: list[float] = []
    for entry in data.get("trial_data") or []:
        try:
            info = json.loads(entry[0]) if isinstance(entry[0], str) else dict(entry[0])
            runtime = json.loads(entry[1]) if isinstance(entry[1], str) else dict(entry[1])
        except (ValueError, TypeError, IndexError, KeyError):
            continue
        status = ray_status(info.get("status"))
        counts[status] = counts.get(status, 0) + 1
        if isinstance(runtime.get("last_result_time"), (int, float)):
            latest.append(float(runtime["last_result_time"]))
    runner = _dict(data.get("runner_data"))
    stats = _dict(data.get("stats"))
    started = stats.get("start_time", runner.get("_start_time"))
    started = float(started) if isinstance(started, (int, float)) else None
    ended = bool(counts) and set(counts) <= {"completed", "error"}
    metric = runner.get("_metric")
    return ExperimentInfo(
        name=folder.name,
        folder=folder.display,
        state="completed" if ended else "unfinished",
        metric=metric if isinstance(metric, str) else None,
        mode=None,
        trials=counts,
        best=None,
        started_at=started,
        duration_s=max(latest) - started if started is not None and latest else None,
        kind=RAY_TUNE,
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


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


def best_trials(folder: Path, n: int = 1, *, include_failed: bool = False) -> tuple[str, str, list[RankedTrial]]:
    """The ``n`` best trials of the raytuner experiment in ``folder`` (metric, mode, trials best
    first), of the :func:`~raytuner.results.records.rankable` ones unless ``include_failed``.

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
    return metric, mode, rank_trials(table, mode, n, include_failed=include_failed)


def rank_trials(trials: pa.Table, mode: str, n: int = 1, *, include_failed: bool = False) -> list[RankedTrial]:
    """The ``n`` trials of a trials table with the best ``metric_best`` by ``mode``, best first:
    of the :func:`~raytuner.results.records.rankable` ones (not failed, finite), or with
    ``include_failed`` of every one with a value, NaN last."""
    wanted = ["trial_id", "status", "metric_best", "metric_best_iteration", "config_json"]
    rows = [
        row
        for row in trials.select(wanted).to_pylist()
        if rankable(row["status"], row["metric_best"]) or (include_failed and row["metric_best"] is not None)
    ]
    sign = -1.0 if mode == "max" else 1.0
    rows.sort(key=lambda row: (math.isnan(row["metric_best"]), sign * row["metric_best"]))
    return [
        RankedTrial(
            row["trial_id"], row["status"], row["metric_best"], row["metric_best_iteration"], json.loads(row["config_json"])
        )
        for row in rows[:n]
    ]
