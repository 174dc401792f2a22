"""Options several commands share, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from raytuner.cli.output import OutputFormat

SpecArg = Annotated[Path, typer.Argument(help="The experiment spec (YAML).", show_default=False)]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        help="Override a spec field: KEY.PATH=VALUE (VALUE is YAML). Repeatable.",
        show_default=False,
    ),
]
NameOpt = Annotated[str | None, typer.Option("--name", help="Experiment name (replaces the spec's name).")]
StorageOpt = Annotated[
    str | None, typer.Option("--storage", help="Storage root: a folder or s3://bucket/prefix (replaces the spec's storage).")
]
StorageRootOpt = Annotated[
    str, typer.Option("--storage", help="Storage root holding experiment folders: a folder or s3://bucket/prefix.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
QuietOpt = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="Print only the final summary and failed trials (on stderr): no live table, no line per trial. "
        "With --json: only the trial_error events and the final experiment_finished.",
    ),
]
FormatOpt = Annotated[
    OutputFormat | None,
    typer.Option(
        "--format",
        "-f",
        help="table (default; outside a terminal no cell is wrapped or cut), tsv (a header line, then one "
        "tab-separated line per row) or json (strict: NaN and infinities are null). --json is --format json.",
        show_default=False,
    ),
]
