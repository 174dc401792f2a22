"""``raytuner checkpoint``: copy a trial's kept checkpoint out of an experiment (a folder or a bucket)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from raytuner.cli.errors import handles_errors
from raytuner.cli.options import StorageRootOpt
from raytuner.cli.show import ExperimentArg
from raytuner.results.checkpoints import Which

app = typer.Typer()


@app.command("checkpoint")
@handles_errors
def checkpoint(
    experiment: ExperimentArg,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The folder to copy the checkpoint into (new, or empty).", show_default=False)
    ],
    trial: Annotated[
        str | None, typer.Option("--trial", help="The trial's id (default: the best trial, as raytuner best ranks them).")
    ] = None,
    which: Annotated[
        Which,
        typer.Option(
            "--which",
            help="best: the trial's best checkpoint by checkpoint.score (else the spec's metric) among those kept; "
            "last: its latest.",
        ),
    ] = Which.BEST,
    storage: StorageRootOpt = "runs",
) -> None:
    """Copy a trial's checkpoint (default: the best trial's best) into a folder.

    Exit code 2: not a raytuner experiment, an unknown trial, or a spec that keeps no checkpoints;
    1: the trial has no checkpoint recorded, its folder is gone, or the copy failed.
    """
    import raytuner

    opened = raytuner.open(experiment, storage=storage)
    info = opened.best_checkpoint(trial, which=which.value)
    opened.copy_checkpoint(output, info.trial_id, which=which.value)
    value = "" if info.value is None else f", {info.metric} = {info.value:.6g}"
    typer.echo(f"trial {info.trial_id}: {which.value} checkpoint (iteration {info.iteration}{value}) from {info.location}")
    typer.echo(f"copied to {output}")
