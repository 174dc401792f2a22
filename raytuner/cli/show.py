"""``raytuner show``: an experiment's trials as a table, sortable and filterable."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from raytuner.cli.errors import handles_errors
from raytuner.cli.options import FormatOpt, JsonOpt, StorageRootOpt

if TYPE_CHECKING:
    import pyarrow as pa
    from rich.table import Table

    from raytuner.api import Experiment

app = typer.Typer()

EXPERIMENT_HELP = "Experiment: name (under --storage), folder, or URI (s3://...); raytuner's or plain Ray Tune's."
ExperimentArg = Annotated[str, typer.Argument(help=EXPERIMENT_HELP, show_default=False)]
WhereOpt = Annotated[
    str | None,
    typer.Option(
        "--where", "-w", help='Filter rows, e.g. \'status == "error"\' or \'config/lr > 1e-3 and metric_best < 0.5\'.'
    ),
]
ColumnsOpt = Annotated[
    str | None, typer.Option("--columns", "-c", help="Comma-separated columns; globs allowed (config/*).")
]
MetricOpt = Annotated[
    str | None,
    typer.Option("--metric", help="Plain Ray Tune folders only: the metric (default: Ray's TuneConfig metric)."),
]
ModeOpt = Annotated[
    str | None,
    typer.Option("--mode", help="Plain Ray Tune folders only: min or max (default min, with a warning: Ray records none)."),
]


def open_experiment(ref: str, storage: str, metric: str | None = None, mode: str | None = None) -> Experiment:
    """``raytuner.open`` for a reading command; one line on stderr when a plain Ray Tune
    folder's mode is assumed (min), not given."""
    import raytuner

    experiment = raytuner.open(ref, storage=storage, metric=metric, mode=mode)
    if experiment.mode_assumed:
        typer.echo(
            f"warning: {experiment.source}: plain Ray Tune folder, Ray records no mode: assuming min "
            "(give --mode max if larger is better)",
            err=True,
        )
    return experiment

HEADERS = {
    "metric_best": "best",
    "metric_best_iteration": "at iter",
    "iterations": "iters",
    "time_total_s": "time s",
    "pareto": "front",
}


@app.command("show")
@handles_errors
def show(
    experiment: ExperimentArg,
    storage: StorageRootOpt = "runs",
    sort: Annotated[
        str | None, typer.Option("--sort", help="Sort by this column (default: metric_best, best first).")
    ] = None,
    desc: Annotated[bool, typer.Option("--desc", help="Sort descending.")] = False,
    where: WhereOpt = None,
    columns: ColumnsOpt = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, help="Show at most this many trials.")] = None,
    metric: MetricOpt = None,
    mode: ModeOpt = None,
    format_: FormatOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Show the trials of an experiment: status, best metric, configuration, error.

    --format tsv or json: the same rows and columns, every value in full.
    """
    from raytuner.cli.output import OutputFormat, chosen_format, print_table, rows_text
    from raytuner.cli.render import stdout_console

    chosen = chosen_format(format_, json_)
    view = open_experiment(experiment, storage, metric, mode).select(columns, where, sort, desc, limit)
    rows = view.rows
    if chosen is not OutputFormat.TABLE:
        typer.echo(rows_text(chosen, rows.column_names, rows.to_pylist()))
        return
    title = f"{view.name}: {rows.num_rows} of {view.total} trials · {view.metric} ({view.mode})"
    if view.objectives:
        shown = ", ".join(f"{name} ({how})" for name, how in view.objectives)
        title = f"{view.name}: {rows.num_rows} of {view.total} trials · {shown} · Pareto front: {view.front_size} (★)"
    console = stdout_console()
    print_table(trials_table(rows, title, 60 if console.is_terminal else None), console)
    if view.decisions:  # PBT: the hyperparameter schedule the best trial actually followed
        console.print(f"PBT: {view.decisions} exploit/explore decisions; the best trial {view.best_trial_id} followed:")
        for segment in view.schedule:
            console.print(
                f"  from step {segment.start_step} (trial {segment.trial_id}): {json.dumps(segment.config)}", markup=False
            )


def trials_table(rows: pa.Table, title: str, width: int | None = 60) -> Table:
    """A Rich table of selected trial rows; long cells (errors) cut to ``width`` characters
    (None: whole); trial ids never."""
    from rich.table import Table

    from raytuner.cli.output import add_key_column
    from raytuner.cli.render import format_value

    table = Table(title=title)
    for name in rows.column_names:
        header = HEADERS.get(name, name.removeprefix("config/"))
        if name == "trial_id":
            add_key_column(table, header)
        else:
            table.add_column(header, overflow="fold", max_width=width if name == "error" else None)
    for row in rows.to_pylist():
        cells = []
        for name in rows.column_names:
            value = row[name]
            text = "-" if value is None else format_value(value)
            if name == "status" and value == "error":
                text = "[red]error[/red]"
            if name == "pareto":
                text = "★" if value else ""
            cells.append(text if width is None or name == "trial_id" or len(text) <= width else text[: width - 1] + "…")
        table.add_row(*cells)
    return table
