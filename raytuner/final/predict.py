"""``raytuner predict``: a refit model applied to a table, written as CSV or Parquet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from raytuner.errors import UsageError

WRITABLE = (".csv", ".parquet", ".pq")


def model_folder(ref: str, storage: str = "runs") -> Path:
    """The model folder ``ref`` names: a folder with ``model.json``, or an experiment with ``refit/``.

    Raises:
        UsageError: neither.
    """
    from raytuner.final.refit import REFIT_DIR
    from raytuner.results.reader import find_experiment
    from raytuner.workloads.torch.final_model import MODEL_JSON

    direct = Path(ref).expanduser()
    if (direct / MODEL_JSON).is_file():
        return direct
    folder = find_experiment(ref, storage)
    if not (folder / REFIT_DIR / MODEL_JSON).is_file():
        if (folder / REFIT_DIR / "metrics.json").is_file():  # own code was refit: its checkpoint, no model
            raise UsageError(
                f"{folder.name}: its refit ran the experiment's own trainable, whose last checkpoint is in "
                f"{folder / REFIT_DIR / 'checkpoint'}; raytuner predict takes the built-in workloads' models only"
            )
        raise UsageError(f"{folder.name} has no refit model; raytuner refit {folder.name} trains one")
    return folder / REFIT_DIR


def predict_table(ref: str, table: Path, output: Path, storage: str = "runs") -> int:
    """Write the predictions of the model ``ref`` names for the rows of ``table`` to ``output``.

    Returns:
        The number of rows predicted.

    Raises:
        UsageError: no model; a table that is missing, unreadable, or whose columns do not
            fit the model; an output that is neither .csv nor .parquet.
    """
    import pyarrow as pa

    from raytuner.workloads.torch.datasets import read_table_file
    from raytuner.workloads.torch.final_model import FinalModel

    if output.suffix.lower() not in WRITABLE:
        raise UsageError(f"--output must end in .csv or .parquet, found {output.name!r}")
    if output.is_dir():
        raise UsageError(f"--output: cannot write {output}: it is a folder")
    folder = model_folder(ref, storage)
    model = FinalModel.load(folder)
    rows = read_table_file(table)
    x = model.feature_matrix(rows, str(table))
    predictions = pa.table(model.predict(folder, x))
    try:
        _write(predictions, output)
    except (OSError, pa.ArrowException) as exc:
        from raytuner.results.layout import unwritable

        reason = unwritable(output.parent, exc) if isinstance(exc, OSError) else str(exc)
        raise UsageError(f"--output: cannot write {output}: {reason}") from exc
    return int(predictions.num_rows)


def _write(predictions: Any, output: Path) -> None:
    """Write the table whole or not at all (a temporary file beside it, then renamed)."""
    from raytuner.results.store import _replacing

    output.parent.mkdir(parents=True, exist_ok=True)
    with _replacing(output) as tmp:
        if output.suffix.lower() == ".csv":
            from pyarrow import csv

            csv.write_csv(predictions, tmp)
        else:
            import pyarrow.parquet as pq

            pq.write_table(predictions, tmp)
