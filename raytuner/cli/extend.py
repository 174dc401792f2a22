"""``raytuner extend``: more trials for a finished experiment, the searcher going on."""

from __future__ import annotations

from typing import Annotated

import typer

from raytuner.cli.errors import exit_codes_help, handles_errors
from raytuner.cli.options import JsonOpt, QuietOpt, StorageRootOpt

app = typer.Typer()


@app.command("extend", epilog=exit_codes_help())
@handles_errors
def extend(
    experiment: Annotated[str, typer.Argument(help="Experiment name (under --storage) or folder.", show_default=False)],
    num_samples: Annotated[
        int, typer.Option("--num-samples", "-n", min=1, help="How many more samples to run.", show_default=False)
    ],
    storage: StorageRootOpt = "runs",
    address: Annotated[
        str | None,
        typer.Option("--address", envvar="RAY_ADDRESS", help="Join this Ray cluster instead of starting a local one."),
    ] = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Ray's own logs and progress.")] = False,
) -> None:
    """Add trials to a completed experiment, warm-started from what its trials taught the searcher.

    Earlier trials are kept and not run again; the new ones land in the same folder and tables.
    """
    from raytuner.cli.render import run_with_display
    from raytuner.execution.runner import RunOptions, extend_experiment
    from raytuner.results.reader import find_experiment

    if address:
        from raytuner.execution.session import enable_token_auth

        enable_token_auth()
    folder = find_experiment(experiment, storage, to_continue=True)
    run_with_display(
        json_,
        verbose,
        lambda listener: extend_experiment(folder, num_samples, RunOptions(address=address, verbose=verbose), listener),
        quiet=quiet,
    )
