"""One error family: the CLI turns each into one clear line and an exit code.

Errors the user causes (a bad spec, a bad flag) exit with 2; failures at run time exit
with 1. Every error keeps its cause (``raise ... from exc``) so ``--debug`` can show it.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """What a ``raytuner`` command's exit status means (the table in the README and ``--help``)."""

    OK = 0  # done; a run: completed, every trial without error
    FAILURE = 1  # a runtime failure; a run: ended failed (Ray failed, failure.max_failed_trials exceeded...)
    BAD_INPUT = 2  # a bad spec, flag or argument; nothing was started
    TRIALS_FAILED = 3  # a run completed, but some of its trials failed
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), or SIGTERM taken as one; a run is left for raytuner resume


@dataclass(frozen=True)
class Location:
    """Where in the user's input a problem is: a file and line, and a key path."""

    source: str | None = None
    line: int | None = None
    path: str | None = None

    def render(self) -> str:
        """``file:line: key.path`` with the parts known (empty when none is)."""
        parts: list[str] = []
        if self.source is not None:
            parts.append(f"{self.source}:{self.line}" if self.line is not None else self.source)
        if self.path:
            parts.append(self.path)
        return ": ".join(parts)


class RaytunerError(Exception):
    """Base of every error raytuner raises on purpose."""

    exit_code: int = ExitCode.FAILURE

    def __init__(self, message: str, location: Location | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location or Location()

    def __str__(self) -> str:
        where = self.location.render()
        return f"{where}: {self.message}" if where else self.message


class SpecError(RaytunerError):
    """The spec (file, overrides or flags) is invalid; nothing was started or written."""

    exit_code = ExitCode.BAD_INPUT


class UsageError(RaytunerError):
    """A command-line argument is wrong (an unknown experiment, a bad option)."""

    exit_code = ExitCode.BAD_INPUT


class MetricNotReportedError(RaytunerError):
    """A trial's report cannot count for the spec's metric, and no trial has reported it: the run was stopped."""

    exit_code = ExitCode.BAD_INPUT


class ExperimentError(RaytunerError):
    """The experiment could not run to its end (Ray failed, results unreadable...)."""

    exit_code = ExitCode.FAILURE


class StorageFullError(ExperimentError):
    """The experiment's storage ran out of space (or quota): the run stopped, and once there is
    room again ``raytuner resume`` goes on from what was written."""


FULL = (errno.ENOSPC, errno.EDQUOT)


def is_storage_full(exc: BaseException | None) -> bool:
    """Whether ``exc``, or an error it came from, is a write refused for want of space or quota."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, StorageFullError):
            return True
        if isinstance(exc, OSError):
            if exc.errno in FULL:
                return True
            # shutil.copytree gathers the errors of its files into one, without an errno
            if any(os.strerror(code) in str(exc) for code in FULL):
                return True
        exc = exc.__cause__
    return False


class SearchStalledError(ExperimentError):
    """Nothing was running or waiting and the searcher gave no trial: the run was ended, resumable."""


class JobError(RaytunerError):
    """The Ray Jobs API could not be reached, or a submitted job failed or was stopped."""

    exit_code: int = ExitCode.FAILURE  # a job's own code (JobRefusedError)


class JobRefusedError(JobError):
    """A submitted job's ``raytuner run`` refused the experiment on the cluster before its first
    trial; the exit code is the job's own (2 for a spec the cluster cannot run)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
