"""After the search: predictions of a refit model (``raytuner predict``)."""

from __future__ import annotations

from pathlib import Path


def predict(model: str | Path, table: str | Path, output: str | Path, *, storage: str = "runs") -> int:
    """Write a refit model's predictions for the rows of ``table`` to ``output`` and return how
    many rows were predicted (``raytuner predict``).

    Args:
        model: a ``refit/`` folder written by :meth:`Experiment.refit`, or an experiment (name
            under ``storage``, or folder) that has one.
        table: the rows, a CSV or Parquet file with the model's feature columns (the target
            column may be there too; it is ignored).
        output: a ``.csv`` or ``.parquet`` file: ``prediction`` (the class label, or the
            regression value) and, for a classifier, ``probability_<label>`` per class.
        storage: where experiment names are looked up.

    Raises:
        UsageError: no model; a table that is missing, unreadable, or whose columns do not fit
            the model; an output that is neither .csv nor .parquet.
    """
    from raytuner.final.predict import predict_table

    return predict_table(str(model), Path(table), Path(output), storage)
