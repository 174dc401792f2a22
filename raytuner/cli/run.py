"""``raytuner run``: validate a spec and run it on a private local Ray or a cluster."""

from __future__ import annotations

from typing import Annotated

import typer

from raytuner.cli.errors import exit_codes_help, handles_errors
from raytuner.cli.options import JsonOpt, NameOpt, QuietOpt, SetOpt, SpecArg, StorageOpt

app = typer.Typer()


@app.command("run", epilog=exit_codes_help())
@handles_errors
def run(
    spec: SpecArg,
    set_: SetOpt = None,
    name: NameOpt = None,
    storage: StorageOpt = None,
    address: Annotated[
        str | None,
        typer.Option("--address", envvar="RAY_ADDRESS", help="Join this Ray cluster instead of starting a local one."),
    ] = None,
    cpus: Annotated[int | None, typer.Option("--cpus", min=1, help="CPUs of the local Ray (default: all).")] = None,
    gpus: Annotated[
        int | None, typer.Option("--gpus", min=0, help="GPUs of the local Ray (default: all; beyond real ones, logical).")
    ] = None,
    inline: Annotated[
        bool,
        typer.Option(
            "--inline",
            help="Run trials in threads of this process, no Ray (execution.backend=inline): short trials, debugging.",
        ),
    ] = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Ray's own logs and progress.")] = False,
    dashboard: Annotated[
        bool,
        typer.Option(
            "--dashboard",
            help="Also serve raytuner dashboard of the storage root on loopback while the run lasts; its URL goes to stderr.",
        ),
    ] = False,
) -> None:
    """Run an experiment: live progress, then the best trials and the experiment folder."""
    import raytuner
    from raytuner.cli.render import end_of_run, run_display

    with run_display(json_, verbose, quiet) as listener:
        experiment = raytuner.run(
            spec,
            overrides=set_ or [],
            name=name,
            storage=storage,
            address=address,
            inline=inline,
            cpus=cpus,
            gpus=gpus,
            verbose=verbose,
            listener=listener,
            dashboard=dashboard,
        )
    end_of_run(json_, experiment.last_run)
