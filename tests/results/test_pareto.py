"""The Pareto front computation, against a brute-force numpy check."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from raytuner.results.pareto import OBJECTIVES_KEY, encode_objectives, front_mask, with_pareto


def brute_force(points: np.ndarray) -> np.ndarray:
    """Non-dominated rows (every column minimized), by comparing every pair."""
    le = (points[:, None, :] <= points[None, :, :]).all(axis=2)
    lt = (points[:, None, :] < points[None, :, :]).any(axis=2)
    dominated = (le & lt).any(axis=0)  # [i, j]: i dominates j
    return ~dominated


@pytest.mark.parametrize("dims", [2, 3, 4])
def test_front_matches_brute_force_with_ties(dims: int) -> None:
    rng = np.random.default_rng(dims)
    for _ in range(20):
        points = rng.integers(0, 6, size=(60, dims)).astype(float)  # small integers: many ties and duplicates
        expected = brute_force(points)
        assert front_mask([list(p) for p in points]) == list(expected)


def test_missing_points_are_never_on_the_front() -> None:
    assert front_mask([[1.0, 2.0], None, [2.0, 1.0], [3.0, 3.0]]) == [True, False, True, False]
    assert front_mask([]) == []


def test_with_pareto_uses_completed_trials_last_values_and_each_mode() -> None:
    meta = {b"raytuner.metric": b"acc", OBJECTIVES_KEY: encode_objectives([("acc", "max"), ("size", "min")])}
    table = pa.table(
        {
            "trial_id": ["a", "b", "c", "d", "e"],
            "status": ["completed", "completed", "completed", "error", "completed"],
            "last/acc": [0.9, 0.8, 0.95, 0.99, 0.7],
            "last/size": [10.0, 5.0, 20.0, 1.0, 6.0],
        }
    ).replace_schema_metadata(meta)
    flags = with_pareto(table).column("pareto").to_pylist()
    # d dominates everything but failed; e is beaten by b on both
    assert flags == [True, True, True, False, False]
    assert with_pareto(table.drop_columns([]).replace_schema_metadata({})).column_names == table.column_names
