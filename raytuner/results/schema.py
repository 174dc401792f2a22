"""The Parquet schemas: explicit, documented (docs/results.md), independent of the first trial.

``trials.parquet`` has fixed columns, then one typed column per parameter of the space
(``config/<path>``, typed from the space, not from whichever trial came first), then
``last/<metric>`` for every metric reported. ``results.parquet`` has fixed columns and one
column per metric. ``experiment.parquet`` has one row of fixed columns (the spec, its state,
the driver's environment). A metric is float64 while every value reported for it is a number (ints
and floats alike); once any value is not a number, the whole column is a string column
(numbers written as JSON) in every file. Nothing reported is dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import TYPE_CHECKING, Any

from raytuner.space.model import Choice, Constant, Float, Integer, Nested, Node, Normal, Space

if TYPE_CHECKING:
    import pyarrow as pa

SCHEMA_VERSION = 1


class ColumnType(str, Enum):
    FLOAT = "float64"
    INT = "int64"
    BOOL = "bool"
    STRING = "string"

    def arrow(self) -> pa.DataType:
        import pyarrow as pa

        return {
            ColumnType.FLOAT: pa.float64(),
            ColumnType.INT: pa.int64(),
            ColumnType.BOOL: pa.bool_(),
            ColumnType.STRING: pa.string(),
        }[self]


def merge(a: ColumnType | None, b: ColumnType) -> ColumnType:
    if a is None or a is b:
        return b
    if {a, b} == {ColumnType.INT, ColumnType.FLOAT}:
        return ColumnType.FLOAT
    return ColumnType.STRING


def type_of_value(value: Any) -> ColumnType:
    if isinstance(value, bool):
        return ColumnType.BOOL
    if isinstance(value, int):
        return ColumnType.INT
    if isinstance(value, float):
        return ColumnType.FLOAT
    return ColumnType.STRING


def config_columns(space: Space, *more: Space) -> dict[str, ColumnType]:
    """``config/<path>`` column types for every parameter the spaces can produce.

    ``more`` are further spaces whose values reach the config (PBT's mutations).
    """
    out: dict[str, ColumnType] = {}
    for each in (space, *more):
        _columns(each.root, "config", out)
    return out


def _columns(node: Node, prefix: str, out: dict[str, ColumnType]) -> None:
    if isinstance(node, Nested):
        for key, child in node:
            _columns(child, f"{prefix}/{key}", out)
    elif isinstance(node, Choice):
        for option in node.options:
            _columns(option, prefix, out)
    elif isinstance(node, Constant):
        if isinstance(node.value, Mapping):
            for key, value in node.value.items():
                _columns(Constant(value), f"{prefix}/{key}", out)
        elif node.value is not None:
            out[prefix] = merge(out.get(prefix), type_of_value(node.value))
    elif isinstance(node, Integer):
        out[prefix] = merge(out.get(prefix), ColumnType.INT)
    elif isinstance(node, (Float, Normal)):
        out[prefix] = merge(out.get(prefix), ColumnType.FLOAT)


def flatten_config(config: Mapping[str, Any], prefix: str = "config") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}/{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_config(value, name))
        else:
            flat[name] = value
    return flat


def coerce(value: Any, column: ColumnType) -> Any:
    """``value`` as ``column`` holds it; None when it cannot be held without loss."""
    if value is None:
        return None
    if column is ColumnType.STRING:
        return value if isinstance(value, str) else json.dumps(value, default=str)
    if column is ColumnType.BOOL:
        return value if isinstance(value, bool) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if column is ColumnType.INT:
        return int(value) if float(value).is_integer() else None
    return float(value)


def metric_type(values: Iterable[Any], current: ColumnType | None = None) -> ColumnType | None:
    """Float while every value is a number, string as soon as one is not."""
    for value in values:
        if value is None:
            continue
        kind = ColumnType.FLOAT if isinstance(value, (int, float)) and not isinstance(value, bool) else ColumnType.STRING
        current = kind if current is None else (current if current is kind else ColumnType.STRING)
    return current


TRIAL_COLUMNS: dict[str, str] = {
    "trial_id": "string",
    "status": "string",
    "iterations": "int64",
    "time_total_s": "float64",
    "started_at": "timestamp[ms, UTC]",
    "ended_at": "timestamp[ms, UTC]",
    "metric": "string",
    "metric_last": "float64",
    "metric_best": "float64",
    "metric_best_iteration": "int64",
    "error": "string",
    "num_failures": "int64",
    "resources_cpu": "float64",
    "resources_gpu": "float64",
    "gpu_ids": "string",
    "node_ip": "string",
    "trial_dir": "string",
    "checkpoint_best": "string",
    "checkpoint_best_iteration": "int64",
    "checkpoint_best_value": "float64",
    "checkpoint_last": "string",
    "checkpoint_last_iteration": "int64",
    "config_json": "string",
}

RESULT_COLUMNS: dict[str, str] = {
    "trial_id": "string",
    "training_iteration": "int64",
    "time_total_s": "float64",
    "timestamp": "timestamp[ms, UTC]",
}


DECISION_COLUMNS: dict[str, str] = {
    "time": "timestamp[ms, UTC]",
    "trial_id": "string",
    "source_trial_id": "string",
    "step": "int64",
    "source_step": "int64",
    "old_config_json": "string",
    "source_config_json": "string",
    "new_config_json": "string",
    "explored_json": "string",
}


EXPERIMENT_COLUMNS: dict[str, str] = {
    "name": "string",
    "folder": "string",
    "status": "string",
    "started_at": "timestamp[ms, UTC]",
    "ended_at": "timestamp[ms, UTC]",
    "error": "string",
    "metric": "string",
    "mode": "string",
    "algorithm": "string",
    "scheduler": "string",
    "seed": "int64",
    "num_samples": "int64",
    "spec_file": "string",
    "spec_yaml": "string",
    "spec_json": "string",
    "raytuner_version": "string",
    "ray_version": "string",
    "torch_version": "string",
    "numpy_version": "string",
    "pyarrow_version": "string",
    "python_version": "string",
    "platform": "string",
    "hostname": "string",
    "cpu_count": "int64",
    "memory_bytes": "int64",
    "gpu_count": "int64",
    "gpu_names": "list<string>",
    "gpu_memory_bytes": "list<int64>",
    "git_commit": "string",
    "git_dirty": "bool",
    "working_dir": "string",
    "command": "string",
}


def fixed_schema(columns: Mapping[str, str]) -> pa.Schema:
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "timestamp[ms, UTC]": pa.timestamp("ms", tz="UTC"),
        # Parquet names a list's items "element": the schema read back is the schema written
        "list<string>": pa.list_(pa.field("element", pa.string())),
        "list<int64>": pa.list_(pa.field("element", pa.int64())),
    }
    return pa.schema([pa.field(name, types[kind]) for name, kind in columns.items()])
