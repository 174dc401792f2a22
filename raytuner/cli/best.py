"""``raytuner best``: the best trial's configuration, ready to paste into a spec."""

from __future__ import annotations

import json
from enum import Enum
from typing import Annotated, Any

import typer

from raytuner.cli.errors import handles_errors
from raytuner.cli.options import StorageRootOpt

app = typer.Typer()


class Format(str, Enum):
    YAML = "yaml"
    JSON = "json"


@app.command("best")
@handles_errors
def best(
    experiment: Annotated[str, typer.Argument(help="Experiment name (under --storage) or folder.", show_default=False)],
    storage: StorageRootOpt = "runs",
    n: Annotated[int, typer.Option("-n", min=1, help="How many of the best trials.")] = 1,
    format_: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.YAML,
) -> None:
    """Print the best trial(s): metric value and configuration."""
    import yaml

    from raytuner.errors import ExperimentError
    from raytuner.results.catalog import best_trials
    from raytuner.results.layout import find_experiment

    folder = find_experiment(experiment, storage)
    metric, mode, ranked = best_trials(folder, n)
    if not ranked:
        raise ExperimentError(f"{folder.name}: no trial has reported {metric} yet")
    rows: list[dict[str, Any]] = [
        {"trial_id": r.trial_id, "status": r.status, metric: r.value, "iteration": r.iteration, "config": r.config}
        for r in ranked
    ]
    from raytuner.results.lineage import best_schedule

    for row in rows:
        schedule = best_schedule(folder, row["trial_id"])
        if schedule:
            row["schedule"] = [{"from_step": s.start_step, "trial_id": s.trial_id, "config": s.config} for s in schedule]
    if format_ is Format.JSON:
        typer.echo(json.dumps(rows[0] if n == 1 else rows, indent=2))
        return
    for i, row in enumerate(rows):
        if i:
            typer.echo("---")
        typer.echo(f"# {folder.name}: trial {row['trial_id']} ({row['status']}), {metric} = {row[metric]:.6g} ({mode})")
        for segment in row.get("schedule", []):
            typer.echo(f"# from step {segment['from_step']} (trial {segment['trial_id']}): {json.dumps(segment['config'])}")
        typer.echo(yaml.safe_dump({"space": row["config"]}, sort_keys=False).rstrip())
