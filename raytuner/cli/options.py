"""Options several commands share, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
