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
    from raytuner.cli.render import run_with_display
    from raytuner.execution.runner import RunOptions, resume_experiment
    from raytuner.results.reader import find_experiment

    if address:
        from raytuner.execution.session import enable_token_auth

        enable_token_auth()
    folder = find_experiment(experiment, storage, to_continue=True)
    run_with_display(
        json_,
        verbose,
        lambda listener: resume_experiment(
            folder, RunOptions(address=address, verbose=verbose), listener, retry_errored=retry_errored
        ),
        quiet=quiet,
    )
