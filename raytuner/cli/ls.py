"""``raytuner ls``: the experiments under a storage root."""

from __future__ import annotations

import time

import typer

from raytuner.cli import strict_json
from raytuner.cli.errors import handles_errors
from raytuner.cli.options import JsonOpt, StorageRootOpt

app = typer.Typer()
DEFAULT_STORAGE = "runs"


@app.command("ls")
@handles_errors
def ls(storage: StorageRootOpt = DEFAULT_STORAGE, json_: JsonOpt = False) -> None:
    """List experiments: name, state, trials by state, best metric, start and duration.

    Plain Ray Tune folders are listed too, marked "(Ray Tune)": trials by state and duration
    from Ray's experiment state; no best, as Ray does not record the mode (show/best take --mode).
    A run still marked running shows what its trials table holds so far.
    """
    from rich.table import Table

    from raytuner.cli.render import format_value, stdout_console
    from raytuner.results.catalog import CRASHED, RAY_TUNE, list_experiments
    from raytuner.results.layout import storage_root
    from raytuner.results.remote import is_uri

    root = storage.rstrip("/") if is_uri(storage) else str(storage_root(storage))
    if storage == DEFAULT_STORAGE and not storage_root(storage).exists():  # nothing run here yet
        typer.echo("[]" if json_ else f"no experiments: no {root} yet (raytuner run creates it; --storage names another root)")
        return
    infos = list_experiments(storage)
    if json_:
        rows = [
            {
                "name": i.name,
                "folder": i.folder,
                "state": i.state,
                "metric": i.metric,
                "mode": i.mode,
                "trials": i.trials,
                "best": i.best,
                "front": i.front,
                "started_at": i.started_at,
                "duration_s": i.duration_s,
                "kind": i.kind,
                "so_far": i.so_far,
            }
            for i in infos
        ]
        typer.echo(strict_json.dumps(rows, indent=2))
        return
    console = stdout_console()
    if not infos:
        console.print(f"no experiments under {root}")
        return
    table = Table(title=root)
    for column in ("name", "state", "trials", "best", "started", "duration"):
        table.add_column(column)
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
    console.print(table)
    if any(info.state == CRASHED for info in infos):
        console.print(f"{CRASHED}: marked running, but its driver is gone; show and export read what it recorded")
