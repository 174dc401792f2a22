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

F = TypeVar("F", bound=Callable[..., Any])

_state = {"debug": False}


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
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise typer.Exit(ExitCode.INTERRUPTED) from None

    return wrapper  # type: ignore[return-value]
