"""The ``raytuner`` command: one module per command, composed here.

Importing this package must stay cheap: no Ray, torch, HyperOpt or pyarrow at module level
(``raytuner --help`` answers in a fraction of a second). Commands import what they need.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
from typing import Annotated

import typer

# Arrow allocates with malloc in this process, not with its default mimalloc pool: a run's
# driver writes its tables every few seconds, from several threads, for as long as the run
# lasts, and mimalloc kept what those writes freed. An inline run of 10,000 trivial trials grew
# about 8 MB per 1,000 trials with mimalloc and about 1.5 with malloc, while Arrow never held
# more than 6 MB at once (docs/performance.md). Read once, when pyarrow loads: so here, before
# any command imports it. A value the user set is kept.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

from raytuner import __version__
from raytuner.cli import (
    best,
    checkpoint,
    compare,
    dashboard,
    export,
    extend,
    init,
    jobs,
    lr_find,
    ls,
    predict,
    refit,
    report,
    resume,
    run,
    schema,
    show,
    submit,
    validate,
)
from raytuner.cli.errors import exit_codes_help, set_debug

app = typer.Typer(
    name="raytuner",
    help="Hyperparameter tuning for deep learning on Ray Tune: one YAML spec, one command.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
    epilog=exit_codes_help(),
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


COMMANDS = (
    run, validate, ls, show, best, checkpoint, refit, predict, compare, export, report, dashboard,
    init, schema, lr_find, resume, extend,
)  # fmt: skip
for module in (*COMMANDS, submit, jobs):
    app.add_typer(module.app)


def entry() -> None:
    """The console script: run the command, then end the process with its exit code at once.

    When the command has returned, everything it writes is written (tables, status, the last
    event). Tearing down an interpreter that loaded Ray, pyarrow and torch then took another
    0.64 s of every run here, and a Ctrl-C landing in it (the second of two, a moment late)
    killed the process by SIGINT: Python resets its handlers to the default while it shuts
    down. So exit handlers (atexit) run, the output is flushed and the process exits, with
    Ctrl-C ignored from the command's return on. Should a thread that is not a daemon still
    run, Python's own exit waits for it as usual.
    """
    try:
        app()
        code = 0
    except SystemExit as stop:
        code = _exit_status(stop.code)
    if any(thread.is_alive() and not thread.daemon for thread in threading.enumerate() if thread is not threading.main_thread()):
        sys.exit(code)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (| head) or a closed stream
            stream.flush()
    os._exit(code)


def _exit_status(code: object) -> int:
    """The status ``sys.exit(code)`` ends a process with: None is 0; other non-integers are
    printed to stderr and give 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1
