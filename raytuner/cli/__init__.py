"""The ``raytuner`` command: one module per command, composed here.

Importing this package must stay cheap: no Ray, torch, HyperOpt or pyarrow at module level
(``raytuner --help`` answers in a fraction of a second). Commands import what they need.
"""

from __future__ import annotations

from typing import Annotated

import typer

from raytuner import __version__
from raytuner.cli import (
    best,
    compare,
    export,
    extend,
    init,
    jobs,
    lr_find,
    ls,
    report,
    resume,
    run,
    schema,
    show,
    submit,
    validate,
)
from raytuner.cli.errors import set_debug

app = typer.Typer(
    name="raytuner",
    help="Hyperparameter tuning for deep learning on Ray Tune: one YAML spec, one command.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"raytuner {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks (also RAYTUNER_DEBUG=1).", envvar="RAYTUNER_DEBUG")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Hyperparameter tuning for deep learning on Ray Tune: one YAML spec, one command."""
    set_debug(debug)


for module in (run, validate, ls, show, best, compare, export, report, init, schema, lr_find, resume, extend, submit, jobs):
    app.add_typer(module.app)


def entry() -> None:
    app()
