"""Following jobs on a cluster: list, inspect, read or stream logs, stop."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from raytuner.errors import JobError, UsageError
from raytuner.jobs.client import call

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient


@dataclass(frozen=True)
class JobRow:
    """One job as raytuner shows it."""

    job_id: str
    status: str
    entrypoint: str
    start_time: float | None
    end_time: float | None
    message: str | None
    driver_exit_code: int | None

    @property
    def finished(self) -> bool:
        return self.status in ("SUCCEEDED", "FAILED", "STOPPED")

    @property
    def exit_code(self) -> int:
        """What ``submit --follow`` exits with: 0 for success, the driver's code when it failed."""
        if self.status == "SUCCEEDED":
            return 0
        return self.driver_exit_code or 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "status": self.status,
            "entrypoint": self.entrypoint,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "message": self.message,
            "driver_exit_code": self.driver_exit_code,
        }


def shown_entrypoint(entrypoint: str) -> str:
    """A job's entrypoint as listings show it: the ``raytuner run`` command, without the probe
    :func:`raytuner.jobs.submission.build_entrypoint` puts before it."""
    return entrypoint.partition("; exec ")[2] if entrypoint.startswith("command -v raytuner") else entrypoint


# Ray's job supervisor writes the entrypoint it runs into the job's output
_RUNNING = re.compile(r"^(Running entrypoint for job [^:\n]*: )(command -v raytuner.*)$", re.MULTILINE)


def shown_output(text: str) -> str:
    """A job's output as raytuner shows it: Ray's line naming the entrypoint names the ``raytuner
    run`` command, not the probe before it (a head without raytuner showed the probe's whole
    shell text, its message quoted, around the message itself)."""
    return _RUNNING.sub(lambda match: match[1] + shown_entrypoint(match[2]), text)


def _row(details: Any) -> JobRow:
    def seconds(ms: int | None) -> float | None:
        return None if not ms else ms / 1000.0

    return JobRow(
        job_id=details.submission_id or details.job_id or "?",
        status=str(getattr(details.status, "value", details.status)),
        entrypoint=shown_entrypoint(details.entrypoint or ""),
        start_time=seconds(details.start_time),
        end_time=seconds(details.end_time),
        message=shown_output(details.message) if details.message else details.message,
        driver_exit_code=getattr(details, "driver_exit_code", None),
    )


def list_jobs(client: JobSubmissionClient, address: str) -> list[JobRow]:
    """Every submitted job of the cluster, oldest first (drivers started by hand are left out)."""
    jobs = call(address, client.list_jobs)
    rows = [_row(job) for job in jobs if job.submission_id]
    return sorted(rows, key=lambda row: row.start_time or 0.0)


def _known(address: str, job_id: str, action: Callable[[], Any]) -> Any:
    try:
        return call(address, action)
    except JobError as exc:
        if "404" in str(exc) or "does not exist" in str(exc):
            raise UsageError(
                f"no job {job_id!r} on the cluster at {address}; `raytuner jobs ls --address {address}` lists them"
            ) from exc
        raise


def get_job(client: JobSubmissionClient, address: str, job_id: str) -> JobRow:
    """One job's status.

    Raises:
        UsageError: the cluster has no such job.
    """
    return _row(_known(address, job_id, lambda: client.get_job_info(job_id)))


def job_logs(client: JobSubmissionClient, address: str, job_id: str) -> str:
    """Everything the job printed so far."""
    return shown_output(str(_known(address, job_id, lambda: client.get_job_logs(job_id))))


def stop_job(client: JobSubmissionClient, address: str, job_id: str) -> bool:
    """Ask the cluster to stop the job; False when it had already finished."""
    return bool(_known(address, job_id, lambda: client.stop_job(job_id)))


def follow_logs(client: JobSubmissionClient, address: str, job_id: str, out: TextIO = sys.stdout) -> JobRow:
    """Stream the job's output to ``out`` until it ends, and return its final status."""
    get_job(client, address, job_id)  # a clear error for an unknown id, before streaming

    async def stream() -> None:
        async for chunk in client.tail_job_logs(job_id):
            out.write(shown_output(chunk))
            out.flush()

    call(address, lambda: asyncio.run(stream()))
    row = get_job(client, address, job_id)
    for _ in range(60):  # the log stream closes a moment before the status turns final
        if row.finished:
            break
        time.sleep(0.5)
        row = get_job(client, address, job_id)
    return row
