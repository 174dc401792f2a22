"""``raytuner predict``: a refit model applied to a table, written as CSV or Parquet."""

from __future__ import annotations

from pathlib import Path

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
    folder = model_folder(ref, storage)
    model = FinalModel.load(folder)
    rows = read_table_file(table)
    x = model.feature_matrix(rows, str(table))
    predictions = pa.table(model.predict(folder, x))
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix.lower() == ".csv":
        from pyarrow import csv

        csv.write_csv(predictions, output)
    else:
        import pyarrow.parquet as pq

        pq.write_table(predictions, output)
    return int(predictions.num_rows)
