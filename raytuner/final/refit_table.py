"""``refit.parquet``: the experiment's row for its final model (``raytuner refit``).

The row is a table of its own beside ``trials.parquet``, not a row of it: everything that
ranks trials (``best``, ``show``, the report, the dashboard, :meth:`Experiment.ranking`)
reads ``trials.parquet``, and a refit trained on the validation rows too, so its scores must
never compete with the search's. One row: the latest refit, written with ``refit/`` and
replaced by the next refit (docs/results.md, "refit.parquet").
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raytuner.results import layout

if TYPE_CHECKING:
    from raytuner.results.folder import Folder


@dataclass(frozen=True)
class RefitRow:
    """One refit, as ``refit.parquet`` holds it.

    Attributes:
        refit_at: when it was written (ISO 8601, UTC).
        trial_id: the search's best trial, whose configuration was refit.
        metric, mode: the search's metric.
        search_value: that trial's best value of the metric (on validation rows).
        search_iteration: the iteration it peaked at.
        epochs: the epochs (own code: iterations) the refit ran.
        config: the configuration it trained with (overrides applied).
        test_metric: the test score matching the metric (``test_accuracy`` for ``val_accuracy``).
        test_value: its value (None: no test split, or own code that reports none).
        test: every ``test_*`` metric of the refit's last epoch.
        train_rows, test_rows: rows trained and scored on (0: own code).
        model: where the ``refit/`` folder is (a path or a URI).
        checkpoint: own code's kept checkpoint in it (None: a built-in model, or none saved).
        backend: ``ray`` or ``inline``; device, node: where it trained.
    """

    trial_id: str
    metric: str
    mode: str
    search_value: float
    search_iteration: int | None
    epochs: int
    config: dict[str, Any]
    test_metric: str
    test_value: float | None
    model: str
    backend: str
    test: dict[str, float] = field(default_factory=dict)
    train_rows: int = 0
    test_rows: int = 0
    checkpoint: str | None = None
    device: str = ""
    node: str = ""
    refit_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))


def write_refit_row(folder: Path, row: RefitRow) -> None:
    """Write ``refit.parquet`` in ``folder`` (replaced whole: a kill leaves the old one or the new)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    record = asdict(row)
    record["config_json"] = json.dumps(record.pop("config"), sort_keys=True, default=str)
    record["test_json"] = json.dumps(record.pop("test"), sort_keys=True)
    table = pa.Table.from_pylist([record], schema=_schema())
    tmp = folder / (layout.REFIT + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, folder / layout.REFIT)


def read_refit_row(folder: Folder) -> RefitRow | None:
    """The refit row of the experiment in ``folder`` (None: it was never refit)."""
    if folder.kind_of(layout.REFIT) != "file":
        return None
    record: dict[str, Any] = folder.read_table(layout.REFIT).to_pylist()[0]
    record["config"] = json.loads(record.pop("config_json"))
    record["test"] = json.loads(record.pop("test_json"))
    return RefitRow(**record)


def _schema() -> Any:
    import pyarrow as pa

    types: Mapping[str, Any] = {
        "trial_id": pa.string(),
        "metric": pa.string(),
        "mode": pa.string(),
        "search_value": pa.float64(),
        "search_iteration": pa.int64(),
        "epochs": pa.int64(),
        "test_metric": pa.string(),
        "test_value": pa.float64(),
        "model": pa.string(),
        "backend": pa.string(),
        "train_rows": pa.int64(),
        "test_rows": pa.int64(),
        "checkpoint": pa.string(),
        "device": pa.string(),
        "node": pa.string(),
        "refit_at": pa.string(),
        "config_json": pa.string(),
        "test_json": pa.string(),
    }
    return pa.schema(list(types.items()))
