"""Turning raytuner's errors into one line on stderr and an exit code."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from raytuner.errors import ExitCode, RaytunerError
from raytuner.results.remote import redact

F = TypeVar("F", bound=Callable[..., Any])

_state = {"debug": False}

# The exit codes of every command, for --help (README.md has the same table).
EXIT_CODES = {
    ExitCode.OK: "done; a run (run, resume, extend): completed, no trial of the experiment failed",
    ExitCode.FAILURE: "runtime failure; a run that ended failed (failure.fail_fast, failure.max_failed_trials)",
    ExitCode.BAD_INPUT: "bad input (spec, option, argument); nothing was started",
    ExitCode.TRIALS_FAILED: "a run completed, but trials failed: raytuner show NAME --where 'status == \"error\"'",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C, or SIGTERM: kill, jobs stop); raytuner resume continues the run",
}


def exit_codes_help() -> str:
    """The exit codes as an epilog for --help (``\\b``: click keeps the lines as they are)."""
    return "\b\nExit codes:\n" + "\n".join(f"  {int(code):>3}  {text}" for code, text in EXIT_CODES.items())


def set_debug(value: bool) -> None:
    _state["debug"] = value or os.environ.get("RAYTUNER_DEBUG", "") not in ("", "0")


def debug() -> bool:
    return _state["debug"] or os.environ.get("RAYTUNER_DEBUG", "") not in ("", "0")


def handles_errors(command: F) -> F:
    """Print a RaytunerError as ``error: ...`` and exit with its code (traceback with --debug)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except RaytunerError as exc:
            if debug():
                traceback.print_exc(file=sys.stderr)
            print(f"error: {redact(str(exc))}", file=sys.stderr)  # a storage URI's credentials stay unshown
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise typer.Exit(ExitCode.INTERRUPTED) from None

    return wrapper  # type: ignore[return-value]
