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
    import raytuner
    from raytuner.cli.render import end_of_run, run_display

    with run_display(json_, verbose, quiet) as listener:
        extended = raytuner.open(experiment, storage=storage).extend(
            num_samples, address=address, verbose=verbose, listener=listener
        )
    end_of_run(json_, extended.last_run)
