"""``raytuner ls``: the experiments under a storage root."""

from __future__ import annotations

import time

import typer

from raytuner.cli.errors import handles_errors
from raytuner.cli.options import FormatOpt, JsonOpt, StorageRootOpt

app = typer.Typer()
DEFAULT_STORAGE = "runs"
FIELDS = ("name", "folder", "state", "metric", "mode", "trials", "best", "front", "started_at", "duration_s", "kind", "so_far")


@app.command("ls")
@handles_errors
def ls(storage: StorageRootOpt = DEFAULT_STORAGE, format_: FormatOpt = None, json_: JsonOpt = False) -> None:
    """List experiments: name, state, trials by state, best metric, start and duration.

    Plain Ray Tune folders are listed too, marked "(Ray Tune)": trials by state and duration
    from Ray's experiment state; no best, as Ray does not record the mode (show/best take --mode).
    A run still marked running shows what its trials table holds so far.

    --format tsv or json: name, folder, state, metric, mode, trials (by state; JSON text in
    tsv), best, front (Pareto front size), started_at (Unix time), duration_s, kind, so_far.
    """
    from rich.table import Table

    from raytuner.api import experiments
    from raytuner.cli.output import OutputFormat, add_key_column, chosen_format, print_table, rows_text
    from raytuner.cli.render import format_value, stdout_console
    from raytuner.results.catalog import CRASHED, RAY_TUNE
    from raytuner.results.folder import is_uri
    from raytuner.results.layout import storage_root

    chosen = chosen_format(format_, json_)
    root = storage.rstrip("/") if is_uri(storage) else str(storage_root(storage))
    if storage == DEFAULT_STORAGE and not storage_root(storage).exists():  # nothing run here yet
        shown = f"no experiments: no {root} yet (raytuner run creates it; --storage names another root)"
        typer.echo(shown if chosen is OutputFormat.TABLE else rows_text(chosen, FIELDS, []))
        return
    infos = experiments(storage)
    if chosen is not OutputFormat.TABLE:
        typer.echo(rows_text(chosen, FIELDS, [{field: getattr(info, field) for field in FIELDS} for info in infos]))
        return
    console = stdout_console()
    if not infos:
        console.print(f"no experiments under {root}")
        return
    table = Table(title=root)
    add_key_column(table, "name")
    for column in ("state", "trials", "best", "started", "duration"):
        table.add_column(column, overflow="fold")
    for info in infos:
        trials = ", ".join(f"{n} {k}" for k, n in info.trials.items() if n) or "-"
        best = f"{info.metric} {format_value(info.best)}" if info.best is not None else "-"
        if info.front is not None:
            best = f"Pareto front: {info.front} trials"
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.started_at)) if info.started_at else "-"
        duration = f"{info.duration_s:.1f}s" if info.duration_s is not None else "-"
        if info.so_far and info.duration_s is not None:
            duration += " so far"
        state = f"{info.state} (Ray Tune)" if info.kind == RAY_TUNE else info.state
        table.add_row(info.name, state, trials, best, started, duration)
    print_table(table, console)
    if any(info.state == CRASHED for info in infos):
        console.print(f"{CRASHED}: marked running, but its driver is gone; show and export read what it recorded")
