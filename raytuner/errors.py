"""One error family: the CLI turns each into one clear line and an exit code.

Errors the user causes (a bad spec, a bad flag) exit with 2; failures at run time exit
with 1. Every error keeps its cause (``raise ... from exc``) so ``--debug`` can show it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where in the user's input a problem is: a file and line, and a key path."""

    source: str | None = None
    line: int | None = None
    path: str | None = None

    def render(self) -> str:
        parts: list[str] = []
        if self.source is not None:
            parts.append(f"{self.source}:{self.line}" if self.line is not None else self.source)
        if self.path:
            parts.append(self.path)
        return ": ".join(parts)


class RaytunerError(Exception):
    """Base of every error raytuner raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, location: Location | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location or Location()

    def __str__(self) -> str:
        where = self.location.render()
        return f"{where}: {self.message}" if where else self.message


class SpecError(RaytunerError):
    """The spec (file, overrides or flags) is invalid; nothing was started or written."""

    exit_code = 2


class UsageError(RaytunerError):
    """A command-line argument is wrong (an unknown experiment, a bad option)."""

    exit_code = 2


class MetricNotReportedError(RaytunerError):
    """The trainable's first report lacks the spec's metric; the run was stopped."""

    exit_code = 2


class ExperimentError(RaytunerError):
    """The experiment could not run to its end (Ray failed, results unreadable...)."""

    exit_code = 1


class SearchStalledError(ExperimentError):
    """Nothing was running or waiting and the searcher gave no trial: the run was ended, resumable."""


class JobError(RaytunerError):
    """The Ray Jobs API could not be reached, or a submitted job failed or was stopped."""

    exit_code = 1


class JobRefusedError(JobError):
    """A submitted job's ``raytuner run`` refused the experiment on the cluster before its first
    trial; the exit code is the job's own (2 for a spec the cluster cannot run)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
