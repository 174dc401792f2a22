"""A plain Ray Tune experiment folder (written without raytuner) as raytuner's two tables.

What Ray Tune leaves behind, and what is read:

- ``experiment_state-<date>.json`` (the newest): each trial's id, status, configuration,
  folder, start time and failures, and the metric given to ``TuneConfig``. Read as JSON;
  Ray's pickled fields are never unpickled.
- one folder per trial with ``params.json`` (the configuration) and the reports, from
  ``result.json`` (one JSON object per line; a last line cut short by a crash is skipped),
  else ``progress.csv``; ``error.txt`` when the trial failed.

Without a space to type them from, ``config/<path>`` columns are typed from the values found
across all trials: all integers int64, numbers float64 (integers and reals mixed too), all
booleans bool, anything else (strings, lists, mixed kinds) string, non-strings as JSON.
Metrics follow the usual rule (float64 while every value is a number, else string).
Statuses: Ray's TERMINATED is ``completed`` (Ray does not record whether a scheduler stopped
a trial early), ERROR ``error``, RUNNING/PENDING/PAUSED as they are.

Reports are written as Parquet parts into a scratch folder as they are read, so memory
stays bounded by one part however many trials there are.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from raytuner.errors import ExperimentError
from raytuner.results import layout
from raytuner.results.folder import Folder
from raytuner.results.records import is_number, metrics_of
from raytuner.results.schema import (
    RESULT_COLUMNS,
    SCHEMA_VERSION,
    TRIAL_COLUMNS,
    ColumnType,
    coerce,
    fixed_schema,
    flatten_config,
    merge,
    metric_type,
    type_of_value,
)
from raytuner.results.tables import ExperimentTables, FolderKind, read_raytuner_folder

PART_ROWS = 100_000
_TRIAL_ID = re.compile(r"_(?P<id>[0-9a-f]{5}_\d{5})(?:_|$)")
_STATUS = {"TERMINATED": "completed", "ERROR": "error", "RUNNING": "running", "PENDING": "pending", "PAUSED": "paused"}


def convert_ray_folder(
    location: Folder, scratch: Path, metric: str | None = None, mode: str | None = None
) -> ExperimentTables:
    """Read the Ray Tune folder at ``location`` into ``scratch`` and open the result.

    Raises:
        ExperimentError: the folder holds no trial Ray Tune would have written.
    """
    import pyarrow as pa

    state = _experiment_state(location)
    metric = metric or state.get("metric")
    assumed = mode is None
    sign = 1.0 if mode == "max" else -1.0
    mode = "max" if sign > 0 else "min"
    meta = {
        b"raytuner.schema_version": str(SCHEMA_VERSION).encode(),
        b"raytuner.metric": (metric or "").encode(),
        b"raytuner.mode": mode.encode(),
    }
    folders = {name for name, is_dir in location.entries() if is_dir and _is_trial_folder(location.child(name))}
    known = state.get("trials", {})
    by_folder = {info.get("relative_logdir"): trial_id for trial_id, info in known.items()}
    parts = _Parts(scratch / layout.RESULTS_PARTS, meta)
    trials: list[dict[str, Any]] = []
    for name in sorted(folders):
        trial_id = by_folder.get(name) or _trial_id_from_name(name)
        trials.append(_read_trial(location.child(name), trial_id, name, known.get(trial_id, {}), metric, sign, parts))
    seen = {t["trial_id"] for t in trials}
    for trial_id, info in known.items():  # trials Ray knew of that never got a folder (pending)
        if trial_id not in seen:
            trials.append(_trial_row(trial_id, info, {}, [], metric, sign, None, None))
    if not trials:
        raise ExperimentError(f"{location.display}: no Ray Tune trial folders found")
    parts.flush()
    metric_types = parts.types
    config_types: dict[str, ColumnType] = {}
    for row in trials:
        for key, value in row["_config_flat"].items():
            if value is not None:
                config_types[key] = merge(config_types.get(key), type_of_value(value))
    base = list(fixed_schema(TRIAL_COLUMNS))
    config_fields = [pa.field(name, kind.arrow()) for name, kind in sorted(config_types.items())]
    last_fields = [pa.field(f"last/{name}", kind.arrow()) for name, kind in metric_types.items()]
    schema = pa.schema(base + config_fields + last_fields, metadata=meta)
    rows = []
    for row in trials:
        out = {k: v for k, v in row.items() if not k.startswith("_")}
        for key, value in row["_config_flat"].items():
            out[key] = coerce(value, config_types[key]) if key in config_types else None
        for key, value in row["_last"].items():
            if key in metric_types:
                out[f"last/{key}"] = coerce(value, metric_types[key])
        rows.append(out)
    table = pa.Table.from_pydict({f.name: [r.get(f.name) for r in rows] for f in schema}, schema=schema)
    import pyarrow.parquet as pq

    pq.write_table(table, scratch / layout.TRIALS)
    tables = read_raytuner_folder(Folder(_local_fs(), str(scratch), location.display))
    tables.name = location.name
    tables.kind = FolderKind.RAY_TUNE
    tables.metric = metric
    tables.mode = mode
    tables.mode_assumed = assumed
    tables.scratch = scratch
    tables.folder = location
    return tables


def ray_status(value: Any) -> str:
    """raytuner's name for a Ray Tune trial status (TERMINATED is ``completed``)."""
    return _STATUS.get(str(value), str(value).lower() or "unknown")


def _local_fs() -> Any:
    import pyarrow.fs as pafs

    return pafs.LocalFileSystem()


def _is_trial_folder(folder: Folder) -> bool:
    names = {name for name, _ in folder.entries()}
    return bool(names & {"params.json", "result.json", "progress.csv"})


def _trial_id_from_name(name: str) -> str:
    match = _TRIAL_ID.search(name)
    return match.group("id") if match else name


def _experiment_state(location: Folder) -> dict[str, Any]:
    """Trials and metric from the newest ``experiment_state-*.json`` ({} when there is none)."""
    names = sorted(n for n, is_dir in location.entries() if not is_dir and n.startswith("experiment_state-"))
    if not names:
        return {}
    try:
        data = location.read_json(names[-1])
    except (OSError, ValueError):
        return {}
    trials: dict[str, dict[str, Any]] = {}
    for entry in data.get("trial_data", []):
        try:
            info = json.loads(entry[0]) if isinstance(entry[0], str) else dict(entry[0])
            runtime = json.loads(entry[1]) if isinstance(entry[1], str) else dict(entry[1])
        except (ValueError, TypeError, IndexError, KeyError):
            continue
        trial_id = str(info.get("trial_id", ""))
        if trial_id:
            trials[trial_id] = {**info, **{f"runtime_{k}": v for k, v in runtime.items()}}
    metric = (data.get("runner_data") or {}).get("_metric")
    return {"trials": trials, "metric": metric if isinstance(metric, str) else None}


def _read_trial(
    folder: Folder,
    trial_id: str,
    name: str,
    info: Mapping[str, Any],
    metric: str | None,
    sign: float,
    parts: _Parts,
) -> dict[str, Any]:
    entries = {n for n, _ in folder.entries()}
    reports = _reports(folder, entries)
    config: dict[str, Any] = {}
    if "params.json" in entries:
        try:
            loaded = folder.read_json("params.json")
            config = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            config = {}
    if not config:
        config = dict(info.get("config") or (reports[0].get("config") if reports else None) or {})
    rows = []
    for report in reports:
        row = {
            "trial_id": trial_id,
            "training_iteration": _int(report.get("training_iteration")),
            "time_total_s": _float(report.get("time_total_s")),
            "timestamp": _ts(report.get("timestamp")),
        }
        row.update(metrics_of(report))
        rows.append(row)
    parts.add(rows)
    error = _error_line(folder) if "error.txt" in entries else None
    return _trial_row(trial_id, info, config, rows, metric, sign, error, folder.path, reports)


def _trial_row(
    trial_id: str,
    info: Mapping[str, Any],
    config: Mapping[str, Any],
    rows: list[dict[str, Any]],
    metric: str | None,
    sign: float,
    error: str | None,
    trial_dir: str | None,
    reports: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    last_report = (reports or [{}])[-1] if reports else {}
    status = _STATUS.get(str(info.get("status", "")))
    if status is None:
        status = "error" if error else ("completed" if last_report.get("done") else ("running" if rows else "pending"))
    best = best_iteration = None
    last: dict[str, Any] = {}
    for row in rows:
        last.update({k: v for k, v in row.items() if k not in RESULT_COLUMNS and v is not None})
        value = row.get(metric) if metric else None
        if is_number(value) and not math.isnan(value) and (best is None or sign * value > sign * best):
            best, best_iteration = float(value), row["training_iteration"]
    metric_last = last.get(metric) if metric else None
    started = info.get("runtime_start_time")
    if not is_number(started) and rows and rows[0]["timestamp"] is not None:
        started = rows[0]["timestamp"].timestamp() - (rows[0]["time_total_s"] or 0.0)
    ended = _ended(started, rows[-1]) if rows and status in ("completed", "error") else None
    failures = info.get("runtime_num_failures")
    return {
        "trial_id": trial_id,
        "status": status,
        "iterations": rows[-1]["training_iteration"] if rows else 0,
        "time_total_s": rows[-1]["time_total_s"] if rows else 0.0,
        "started_at": _ts(started),
        "ended_at": ended,
        "metric": metric,
        "metric_last": float(metric_last) if is_number(metric_last) else None,
        "metric_best": best,
        "metric_best_iteration": best_iteration,
        "error": error,
        "num_failures": int(failures) if is_number(failures) else int(error is not None),
        "resources_cpu": None,
        "resources_gpu": None,
        "node_ip": last_report.get("node_ip"),
        "trial_dir": trial_dir,
        "config_json": json.dumps(config, sort_keys=True, default=str),
        "_config_flat": flatten_config(config),
        "_last": last,
    }


def _ended(started: Any, last: Mapping[str, Any]) -> datetime | None:
    """When a trial ended: its start plus its running time, or its last report's ``timestamp``.

    Ray writes ``timestamp`` in whole seconds, so a trial shorter than a second would end
    before it started by that alone; the later of the two estimates is kept.
    """
    stamp: datetime | None = last["timestamp"]
    total = last["time_total_s"]
    if not (is_number(started) and is_number(total)):
        return stamp
    ran = _ts(float(started) + float(total))
    return ran if stamp is None or ran is not None and ran > stamp else stamp


def _reports(folder: Folder, entries: set[str]) -> list[dict[str, Any]]:
    if "result.json" in entries:
        text = folder.read_bytes("result.json").decode("utf-8", errors="replace")
        out = []
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash
            if isinstance(value, dict):
                out.append(value)
        return out
    if "progress.csv" in entries:
        text = folder.read_bytes("progress.csv").decode("utf-8", errors="replace")
        rows = []
        for record in csv.DictReader(io.StringIO(text)):
            row: dict[str, Any] = {}
            for key, raw in record.items():
                if key is None:
                    continue
                _nest(row, key.split("/"), _parse_cell(raw))
            rows.append(row)
        return rows
    return []


def _nest(row: dict[str, Any], keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        row = row.setdefault(key, {})
    row[keys[-1]] = value


def _parse_cell(raw: str | None) -> Any:
    if raw is None or raw == "":
        return None
    if raw in ("True", "False"):
        return raw == "True"
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        return raw


def _error_line(folder: Folder) -> str | None:
    try:
        text = folder.read_bytes("error.txt").decode("utf-8", errors="replace")
    except OSError:
        return None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else None


def _int(value: Any) -> int:
    return int(value) if is_number(value) else 0


def _float(value: Any) -> float:
    return float(value) if is_number(value) else 0.0


def _ts(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    return datetime.fromtimestamp(float(value), tz=UTC) if is_number(value) else None


class _Parts:
    """Result rows written as numbered Parquet parts, each typed by its own rows."""

    def __init__(self, folder: Path, metadata: dict[bytes, bytes]) -> None:
        self.folder = folder
        self.metadata = metadata
        self.rows: list[dict[str, Any]] = []
        self.count = 0
        self.types: dict[str, ColumnType] = {}
        folder.mkdir(parents=True, exist_ok=True)

    def add(self, rows: list[dict[str, Any]]) -> None:
        self.rows.extend(rows)
        if len(self.rows) >= PART_ROWS:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.rows:
            return
        names: dict[str, None] = {}
        for row in self.rows:
            names.update(dict.fromkeys(row))
        local: dict[str, ColumnType] = {}
        for name in names:
            if name not in RESULT_COLUMNS:
                kind = metric_type(_column(self.rows, name)) or ColumnType.FLOAT
                local[name] = kind
                self.types[name] = layout.unified_kind(self.types.get(name), kind)
        schema = pa.schema(
            list(fixed_schema(RESULT_COLUMNS)) + [pa.field(n, k.arrow()) for n, k in local.items()],
            metadata=self.metadata,
        )
        columns = {}
        for field in schema:
            wanted = local.get(field.name)
            values = _column(self.rows, field.name)
            columns[field.name] = list(values) if wanted is None else [coerce(v, wanted) for v in values]
        pq.write_table(pa.Table.from_pydict(columns, schema=schema), self.folder / layout.part_name(self.count))
        self.count += 1
        self.rows = []


def _column(rows: list[dict[str, Any]], name: str) -> Iterator[Any]:
    return (row.get(name) for row in rows)
