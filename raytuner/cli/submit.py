"""``raytuner submit``: run an experiment on a Ray cluster as a job, through the Jobs API."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from raytuner.cli.errors import handles_errors
from raytuner.cli.options import NameOpt, SetOpt, SpecArg, StorageOpt

app = typer.Typer()

JobsAddressOpt = Annotated[
    str,
    typer.Option(
        "--address",
        envvar="RAY_API_SERVER_ADDRESS",
        help="The cluster's Jobs API (dashboard), e.g. http://127.0.0.1:8265 through an SSH tunnel.",
        show_default=False,
    ),
]


@app.command("submit")
@handles_errors
def submit(
    spec: SpecArg,
    address: JobsAddressOpt,
    set_: SetOpt = None,
    name: NameOpt = None,
    storage: StorageOpt = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Stream the job's output and exit with its status.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Ray's own SDK logs (uploads, log streams).")] = False,
) -> None:
    """Submit an experiment to a Ray cluster as a job: the working directory goes with it.

    The spec is checked here first; the job runs `raytuner run SPEC --json` on the cluster.
    Without --follow, prints the job id and returns at once. When no live node holds one
    trial, it waits for the job's own check of the node types the cluster's autoscaler can
    start: it prints the node type the job waits for, or the job's refusal (exit 2). A head
    without the raytuner command fails the job with one line saying what to install (exit 2).
    A cluster just started, whose Jobs API has no agent yet, is asked again for up to 60 s.
    """
    from raytuner.execution.preflight import show_resources
    from raytuner.execution.session import enable_token_auth

    enable_token_auth()  # before user code imports Ray while the spec is validated
    from raytuner.jobs import Submission, connect, follow_logs
    from raytuner.jobs import submit as submit_job
    from raytuner.jobs.submission import leaves_credentials_out, unmet_request, watch_start
    from raytuner.spec.loader import load_experiment

    overrides = list(set_ or [])
    experiment = load_experiment(spec, overrides, name=name, storage=storage)
    client = connect(address, verbose=verbose)
    unmet = unmet_request(client, address, experiment)
    submission = Submission(Path(spec), tuple(overrides), name, storage)
    job_id = submit_job(client, address, experiment, submission)
    if leaves_credentials_out(submission):
        print(
            "the credentials in the storage URI were not sent with the job: the cluster's nodes reach the bucket "
            "with their own (an instance role, or AWS_* variables in the nodes' environment)",
            file=sys.stderr,
        )
    if unmet is not None:
        print(
            f"submitted {job_id}; no live node of the cluster holds one trial ({show_resources(unmet)}): the job "
            "checks the node types its autoscaler can start",
            file=sys.stderr,
        )
    if not follow:
        note = watch_start(client, address, job_id, unmet) if unmet is not None else None
        if note:
            print(note, file=sys.stderr)
        typer.echo(job_id)
        return
    print(f"submitted {job_id}; following its output (Ctrl-C stops following, not the job)", file=sys.stderr)
    try:
        row = follow_logs(client, address, job_id)
    except KeyboardInterrupt:
        print(f"the job keeps running: raytuner jobs stop {job_id} --address {address}", file=sys.stderr)
        raise
    print(f"job {job_id}: {row.status}", file=sys.stderr)
    raise typer.Exit(row.exit_code)
