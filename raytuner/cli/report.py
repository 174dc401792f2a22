"""``raytuner report``: one self-contained HTML file of charts, optionally PNGs too."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from raytuner.cli.errors import handles_errors
from raytuner.cli.options import StorageRootOpt
from raytuner.cli.show import ExperimentArg, MetricOpt, ModeOpt, open_experiment

app = typer.Typer()


@app.command("report")
@handles_errors
def report(
    experiment: ExperimentArg,
    storage: StorageRootOpt = "runs",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="HTML file to write (default: report.html in the experiment folder; on object storage, in its "
            "working copy for raytuner's folders, ./<name>-report.html for plain Ray Tune's).",
            show_default=False,
        ),
    ] = None,
    png: Annotated[
        bool, typer.Option("--png", help="Also write each chart as PNG to <output stem>-png/ (needs Chromium).")
    ] = False,
    metric: MetricOpt = None,
    mode: ModeOpt = None,
) -> None:
    """Write an HTML report: best so far over time, learning curves, parallel coordinates,
    parameter importance, where early stopping stopped trials, the PBT family tree.

    The file is self-contained (inline SVG, no scripts, nothing fetched): open it anywhere.
    """
    result = open_experiment(experiment, storage, metric, mode).write_report(output, png=png)
    for section in result.omitted:
        typer.echo(f"not drawn: {section.title}: {section.reason}", err=True)
    typer.echo(f"{len(result.drawn)} charts: {result.html}")
    for path in result.pngs:
        typer.echo(f"png: {path}")
