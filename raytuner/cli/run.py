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
    from raytuner.cli.render import run_with_display
    from raytuner.execution.runner import RunOptions, run_experiment
    from raytuner.spec.loader import load_experiment

    if address:
        from raytuner.execution.session import enable_token_auth

        enable_token_auth()  # before user code imports Ray while the spec is validated
    overrides = [*(set_ or []), *(["execution.backend=inline"] if inline else [])]
    experiment = load_experiment(spec, overrides, name=name, storage=storage)
    if dashboard:
        from raytuner.dashboard import start_beside

        start_beside(experiment.spec.storage, lambda served: typer.echo(f"dashboard: {served.url}", err=True))
    run_with_display(
        json_,
        verbose,
        lambda listener: run_experiment(
            experiment, RunOptions(address=address, verbose=verbose, num_cpus=cpus, num_gpus=gpus), listener
        ),
        quiet=quiet,
    )
