"""``raytuner report``: one self-contained HTML file of charts, optionally PNGs too."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from raytuner.cli.errors import handles_errors
from raytuner.cli.options import StorageRootOpt
from raytuner.cli.show import ExperimentArg, MetricOpt, ModeOpt, warn_assumed_mode

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
    from raytuner.results.layout import find_experiment
    from raytuner.results.reader import FolderKind, experiment_at, open_experiment
    from raytuner.results.report import REPORT_FILE, write_report

    location, kind = experiment_at(experiment, storage)
    if kind is FolderKind.RAY_TUNE:
        with open_experiment(experiment, storage, metric=metric, mode=mode) as tables:
            warn_assumed_mode(tables)
            if output is None:
                local = location.local_path
                output = local / REPORT_FILE if local is not None else Path(f"{tables.name}-{REPORT_FILE}")
            shown = str(location.local_path) if location.local_path is not None else tables.source
            result = write_report(tables.scratch or Path(tables.source), output, png, source=shown)
    else:
        result = write_report(find_experiment(experiment, storage), output, png)
    for section in result.omitted:
        typer.echo(f"not drawn: {section.title}: {section.reason}", err=True)
    typer.echo(f"{len(result.drawn)} charts: {result.html}")
    for path in result.pngs:
        typer.echo(f"png: {path}")
