"""``raytuner predict``: a refit model's predictions for the rows of a table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from raytuner.cli.errors import handles_errors
from raytuner.cli.options import StorageRootOpt

app = typer.Typer()


@app.command("predict")
@handles_errors
def predict(
    model: Annotated[
        str,
        typer.Argument(
            help="A model folder written by raytuner refit, or an experiment (name or folder) with one.",
            show_default=False,
        ),
    ],
    table: Annotated[Path, typer.Argument(help="The rows to predict: a CSV or Parquet file.", show_default=False)],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Where to write the predictions: a .csv or .parquet file.", show_default=False),
    ],
    storage: StorageRootOpt = "runs",
) -> None:
    """Predict with a refit model: the table goes through the model's preprocessing (column
    order, feature scaling); out come the class label (prediction) and each class's
    probability (probability_<label>), or the regression value, one row per input row.

    The table must have the model's feature columns; it may have the target column
    (ignored); any other column is an error.
    """
    import raytuner

    rows = raytuner.predict(model, table, output, storage=storage)
    typer.echo(f"{rows} predictions written to {output}")
