"""``raytuner resume``: continue an interrupted experiment."""

from __future__ import annotations

from typing import Annotated

import typer

from raytuner.cli.errors import exit_codes_help, handles_errors
from raytuner.cli.options import JsonOpt, QuietOpt, StorageRootOpt

app = typer.Typer()


@app.command("resume", epilog=exit_codes_help())
@handles_errors
def resume(
    experiment: Annotated[str, typer.Argument(help="Experiment name (under --storage) or folder.", show_default=False)],
    storage: StorageRootOpt = "runs",
    retry_errored: Annotated[bool, typer.Option("--retry-errored", help="Start failed trials over too.")] = False,
    address: Annotated[
        str | None,
        typer.Option("--address", envvar="RAY_ADDRESS", help="Join this Ray cluster instead of starting a local one."),
    ] = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Ray's own logs and progress.")] = False,
) -> None:
    """Continue an interrupted experiment (driver killed, Ctrl-C, machine restarted).

    Finished trials are kept and not run again; unfinished ones continue from their last
    checkpoint; the searcher and scheduler continue from their saved state.
    """
    import raytuner
    from raytuner.cli.render import end_of_run, run_display

    with run_display(json_, verbose, quiet) as listener:
        resumed = raytuner.open(experiment, storage=storage).resume(
            retry_errored=retry_errored, address=address, verbose=verbose, listener=listener
        )
    end_of_run(json_, resumed.last_run)
