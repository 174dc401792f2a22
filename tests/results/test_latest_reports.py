"""A report repeated after a restore replaces the earlier one, and nothing else is dropped."""

from __future__ import annotations

import pyarrow as pa

from raytuner.results.store import _latest_reports


def test_repeated_reports_keep_the_latest_and_every_other_row() -> None:
    table = pa.table(
        {
            "trial_id": ["a", "a", "b", "a", "a", "b", "c"],
            "training_iteration": [1, 2, 1, 2, 3, 2, 1],
            "loss": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        }
    )
    kept = _latest_reports(table).to_pydict()
    assert list(zip(kept["trial_id"], kept["training_iteration"], kept["loss"], strict=True)) == [
        ("a", 1, 0.0),
        ("b", 1, 2.0),
        ("a", 2, 3.0),  # the repeat after the restore wins
        ("a", 3, 4.0),
        ("b", 2, 5.0),
        ("c", 1, 6.0),
    ]
