"""``raytuner jobs``: list, inspect, read and stop jobs submitted to a Ray cluster."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer

from raytuner.cli.errors import handles_errors
from raytuner.cli.options import JsonOpt
from raytuner.cli.submit import JobsAddressOpt

app = typer.Typer(name="jobs", help="List, inspect, read and stop jobs on a Ray cluster.", no_args_is_help=True)

JobArg = Annotated[str, typer.Argument(help="The job id (`raytuner submit` prints it).", show_default=False)]


def _when(seconds: float | None) -> str:
    return "-" if seconds is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


@app.command("ls")
@handles_errors
def ls(address: JobsAddressOpt, json_: JsonOpt = False) -> None:
    """List the cluster's submitted jobs, oldest first."""
    from raytuner.jobs import connect, list_jobs

    rows = list_jobs(connect(address), address)
    if json_:
        typer.echo(json.dumps([row.as_dict() for row in rows], indent=2))
        return
    if not rows:
        typer.echo(f"no jobs on the cluster at {address}")
        return
    width = max(len(row.job_id) for row in rows)
    for row in rows:
        typer.echo(f"{row.job_id:<{width}}  {row.status:<9}  {_when(row.start_time)}  {row.entrypoint}")


@app.command("status")
@handles_errors
def status(job: JobArg, address: JobsAddressOpt, json_: JsonOpt = False) -> None:
    """Show one job's status. Exit code: 0 while it runs or after it succeeded; once it failed or was
    stopped, its driver's exit code (1 when it has none)."""
    from raytuner.jobs import connect, get_job

    row = get_job(connect(address), address, job)
    if json_:
        typer.echo(json.dumps(row.as_dict(), indent=2))
    else:
        typer.echo(f"{row.job_id}: {row.status}")
        typer.echo(f"  started {_when(row.start_time)}, ended {_when(row.end_time)}")
        typer.echo(f"  entrypoint: {row.entrypoint}")
        if row.message:
            typer.echo(f"  {row.message}")
    if row.finished and row.exit_code:
        raise typer.Exit(row.exit_code)


@app.command("logs")
@handles_errors
def logs(
    job: JobArg,
    address: JobsAddressOpt,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep streaming until the job ends.")] = False,
) -> None:
    """Print a job's output (with --follow, stream it and exit with the job's status)."""
    from raytuner.jobs import connect, follow_logs, job_logs

    client = connect(address)
    if not follow:
        typer.echo(job_logs(client, address, job), nl=False)
        return
    row = follow_logs(client, address, job)
    print(f"job {row.job_id}: {row.status}", file=sys.stderr)
    raise typer.Exit(row.exit_code)


@app.command("stop")
@handles_errors
def stop(job: JobArg, address: JobsAddressOpt) -> None:
    """Stop a running job (its trials stop with it)."""
    from raytuner.jobs import connect, stop_job

    stopped = stop_job(connect(address), address, job)
    typer.echo(f"{job}: stop requested" if stopped else f"{job}: already finished")
