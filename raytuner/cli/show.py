"""``raytuner show``: an experiment's trials as a table, sortable and filterable."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from raytuner.cli import strict_json
from raytuner.cli.errors import handles_errors
from raytuner.cli.options import JsonOpt, StorageRootOpt

if TYPE_CHECKING:
    import pyarrow as pa
    from rich.table import Table

    from raytuner.results.reader import ExperimentTables

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


def warn_assumed_mode(tables: ExperimentTables) -> None:
    """One line on stderr when a plain Ray Tune folder's mode was assumed (min), not given."""
    if tables.mode_assumed:
        typer.echo(
            f"warning: {tables.source}: plain Ray Tune folder, Ray records no mode: assuming {tables.mode} "
            "(give --mode max if larger is better)",
            err=True,
        )

HEADERS = {
    "metric_best": "best",
    "metric_best_iteration": "at iter",
    "iterations": "iters",
    "time_total_s": "time s",
    "pareto": "front",
}
DEFAULT_COLUMNS = "trial_id,status,metric_best,metric_best_iteration,iterations,time_total_s,config/*,error"


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
    json_: JsonOpt = False,
) -> None:
    """Show the trials of an experiment: status, best metric, configuration, error."""
    from raytuner.cli.render import stdout_console
    from raytuner.results.pareto import PARETO_COLUMN, objectives_of
    from raytuner.results.query import trial_rows
    from raytuner.results.reader import open_experiment

    with open_experiment(experiment, storage, metric=metric, mode=mode) as tables:
        warn_assumed_mode(tables)
        objectives = objectives_of(tables.trials.schema.metadata)
        if sort is None:
            # several metrics: by the first one's last value (the value the Pareto front compares)
            sort = f"last/{objectives[0][0]}" if objectives else "metric_best"
            desc = tables.mode == "max"
        wanted = columns
        if wanted is None:
            present = tables.trials.column_names
            defaults = multi_objective_columns(objectives) if objectives else DEFAULT_COLUMNS
            wanted = ",".join(c for c in defaults.split(",") if c.endswith("*") or c in present)
        rows = trial_rows(tables, columns=wanted, where=where, sort=sort, descending=desc, limit=limit)
        total = tables.trials.num_rows
        title = f"{tables.name}: {rows.num_rows} of {total} trials · {tables.metric} ({tables.mode})"
        best_id = _best_trial_id(tables.trials, tables.mode)
        if objectives:
            size = sum(1 for flag in tables.trials.column(PARETO_COLUMN).to_pylist() if flag)
            shown = ", ".join(f"{name} ({how})" for name, how in objectives)
            title = f"{tables.name}: {rows.num_rows} of {total} trials · {shown} · Pareto front: {size} (★)"
            best_id = None  # no single best to follow through PBT
    if json_:
        typer.echo(strict_json.dumps(rows.to_pylist(), indent=2))
        return
    console = stdout_console()
    console.print(trials_table(rows, title))
    _print_pbt_schedule(console, experiment, storage, best_id)


def multi_objective_columns(objectives: list[tuple[str, str]]) -> str:
    """Default columns with several metrics: the front mark and each objective's last value."""
    last = ",".join(f"last/{name}" for name, _ in objectives)
    return f"trial_id,status,pareto,{last},iterations,time_total_s,config/*,error"


def _best_trial_id(trials: pa.Table, mode: str | None) -> str | None:
    rows = [r for r in trials.select(["trial_id", "metric_best"]).to_pylist() if r["metric_best"] is not None]
    if not rows:
        return None
    pick = max if mode == "max" else min
    return str(pick(rows, key=lambda r: r["metric_best"])["trial_id"])


def _print_pbt_schedule(console: Any, experiment: str, storage: str, best_id: str | None) -> None:
    """For PBT experiments: the hyperparameter schedule the best trial actually followed."""
    from raytuner.errors import UsageError
    from raytuner.results.layout import find_experiment
    from raytuner.results.lineage import best_schedule, read_exploits

    try:
        folder = find_experiment(experiment, storage)
    except UsageError:  # not a local raytuner folder (object storage, plain Ray Tune): no lineage
        return
    if best_id is None:
        return
    exploits = read_exploits(folder)
    if not exploits:
        return
    console.print(f"PBT: {len(exploits)} exploit/explore decisions; the best trial {best_id} followed:")
    for segment in best_schedule(folder, best_id):
        console.print(
            f"  from step {segment.start_step} (trial {segment.trial_id}): {json.dumps(segment.config)}", markup=False
        )


def trials_table(rows: pa.Table, title: str, width: int = 60) -> Table:
    """A Rich table of selected trial rows; long cells (errors) cut to ``width`` characters."""
    from rich.table import Table

    from raytuner.cli.render import format_value

    table = Table(title=title)
    for name in rows.column_names:
        header = HEADERS.get(name, name.removeprefix("config/"))
        table.add_column(header, overflow="fold", no_wrap=name != "error", max_width=width if name == "error" else None)
    for row in rows.to_pylist():
        cells = []
        for name in rows.column_names:
            value = row[name]
            text = "-" if value is None else format_value(value)
            if name == "status" and value == "error":
                text = "[red]error[/red]"
            if name == "pareto":
                text = "★" if value else ""
            cells.append(text if len(text) <= width else text[: width - 1] + "…")
        table.add_row(*cells)
    return table
