"""``raytuner export``: an experiment's trials or reports as Parquet, CSV or JSON lines."""

from __future__ import annotations

from typing import Annotated

import typer

from raytuner.cli.errors import handles_errors
from raytuner.cli.options import StorageRootOpt
from raytuner.cli.show import ColumnsOpt, ExperimentArg, MetricOpt, ModeOpt, WhereOpt, open_experiment
from raytuner.results.export import ExportFormat
from raytuner.results.query import TableName

app = typer.Typer()


@app.command("export")
@handles_errors
def export(
    experiment: ExperimentArg,
    storage: StorageRootOpt = "runs",
    table: Annotated[
        TableName, typer.Option("--table", "-t", help="trials: one row per trial; results: one row per report.")
    ] = TableName.RESULTS,
    format_: Annotated[ExportFormat, typer.Option("--format", "-f", help="Output format.")] = ExportFormat.PARQUET,
    output: Annotated[
        str | None,
        typer.Option(
            "--output", "-o", help="File or URI to write (default: stdout for csv/jsonl, else <name>-<table>.parquet)."
        ),
    ] = None,
    columns: ColumnsOpt = None,
    where: WhereOpt = None,
    metric: MetricOpt = None,
    mode: ModeOpt = None,
) -> None:
    """Export trials or reports of any experiment folder (raytuner's or plain Ray Tune's).

    Reports can be filtered and extended by trial columns: --where 'status == "completed"'
    --columns 'trial_id,training_iteration,loss,config/*'.
    """
    import sys

    opened = open_experiment(experiment, storage, metric, mode)
    summary = opened.export(table, format_, output, columns=columns, where=where)
    if summary.target != "stdout":
        print(f"wrote {summary.rows} rows × {len(summary.columns)} columns to {summary.target}", file=sys.stderr)
