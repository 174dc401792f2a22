"""``raytuner dashboard``: every experiment under a storage root, live, in the browser."""

from __future__ import annotations

from typing import Annotated

import typer

from raytuner.cli.errors import handles_errors
from raytuner.cli.options import StorageRootOpt

app = typer.Typer()

HostOpt = Annotated[
    str,
    typer.Option(
        "--host",
        help="Address to listen on. Loopback (the default) needs no token; any other (0.0.0.0 on a cluster "
        "head) prints a URL with a token, once, and refuses requests without it.",
    ),
]
PortOpt = Annotated[
    int | None,
    typer.Option(
        "--port", min=1, max=65535, help="Port to listen on (default: the first free one from 8265 up).", show_default=False
    ),
]


@app.command("dashboard")
@handles_errors
def dashboard(storage: StorageRootOpt = "runs", host: HostOpt = "127.0.0.1", port: PortOpt = None) -> None:
    """Serve a live, read-only web view of the experiments under --storage until Ctrl-C.

    The list of experiments (what ls shows) and, for each, the report's charts, the trial
    table (sortable, filtered with show's --where language), a page per trial, the spec, the
    best configurations as YAML and downloads (Parquet, CSV); running experiments update
    every 1-2 s without a reload. Nothing is fetched from the network; nothing is changed.
    Needs the dashboard extra: pip install 'raytuner[dashboard]'.
    """
    from raytuner.dashboard import Dashboard, start

    def announce(served: Dashboard) -> None:
        typer.echo(f"raytuner dashboard of {storage}: {served.url}  (Ctrl-C stops it)", err=False)

    start(storage, host, port, announce)
