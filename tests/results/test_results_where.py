"""The --where language: what it accepts, what it refuses, and that nothing is evaluated."""

from __future__ import annotations

import pyarrow as pa
import pytest

from raytuner.errors import UsageError
from raytuner.results.query import select_columns
from raytuner.results.where import parse_where

TABLE = pa.table(
    {
        "status": ["completed", "error", "completed", "stopped"],
        "metric_best": [0.2, None, 0.7, 0.4],
        "config/lr": [1e-4, 1e-2, 3e-3, 5e-2],
        "config/opt/name": ["adam", "sgd", "sgd", "adam"],
        "error": [None, 'ValueError: "CUDA" out of memory', None, None],
    }
)


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        ('status == "error"', [1]),
        ("status != 'error'", [0, 2, 3]),
        ("metric_best < 0.5", [0, 3]),
        ("config/lr > 1e-3 and metric_best < 0.5", [3]),
        ('not (config/opt/name == "adam") or metric_best is null', [1, 2]),
        ('config/opt/name in ("sgd", "rmsprop")', [1, 2]),
        ("status not in ('completed')", [1, 3]),
        ("metric_best is not null and `config/lr` <= 0.003", [0, 2]),
        ('error =~ "CUDA|memory"', [1]),
        ("config/lr>=5e-2", [3]),
    ],
)
def test_filters_select_the_right_rows(text: str, rows: list[int]) -> None:
    condition = parse_where(text, TABLE.column_names)
    index = pa.array(range(TABLE.num_rows))
    kept = TABLE.append_column("i", index).filter(condition.expression).column("i").to_pylist()
    assert kept == rows


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lr > 1", "no column 'lr'"),
        ("metric_best <", "expected a value"),
        ("metric_best < 1 and", "expected a column name at the end"),
        ("metric_best == null", "is null"),
        ("__import__('os').system('true')", "cannot read"),
        ("status == 'error' ; drop", "cannot read"),
        ("(metric_best < 1", "expected ')'"),
    ],
)
def test_bad_filters_are_usage_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_where(text, TABLE.column_names)
    assert message in str(caught.value)
    assert caught.value.exit_code == 2


def test_columns_take_globs_in_order_and_refuse_unknown_ones() -> None:
    names = TABLE.column_names
    assert select_columns(names, "error,config/*") == ["error", "config/lr", "config/opt/name"]
    assert select_columns(names, None) == names
    with pytest.raises(UsageError, match="no column matches 'lr'"):
        select_columns(names, "status,lr")
