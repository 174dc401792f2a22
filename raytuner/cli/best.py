"""``raytuner best``: the best trial's configuration, ready to paste into a spec.

With several metrics there is no single best: the Pareto front is listed instead (as a
table by default), sorted by the first objective.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from raytuner.cli.errors import handles_errors
from raytuner.cli.options import StorageRootOpt
from raytuner.cli.output import OutputFormat, json_text, rows_text
from raytuner.cli.show import ExperimentArg, MetricOpt, ModeOpt, open_experiment

if TYPE_CHECKING:
    from raytuner.api import Ranking

app = typer.Typer()


class Format(str, Enum):
    TABLE = "table"
    YAML = "yaml"
    JSON = "json"
    TSV = "tsv"


@app.command("best")
@handles_errors
def best(
    experiment: ExperimentArg,
    storage: StorageRootOpt = "runs",
    n: Annotated[
        int | None,
        typer.Option("-n", min=1, help="How many of the best trials (several metrics: of the Pareto front; default all)."),
    ] = None,
    format_: Annotated[
        Format | None,
        typer.Option(
            "--format",
            "-f",
            help="Output format (default: yaml; table for a multi-objective Pareto front). json (strict: NaN and "
            "infinities are null): one object {trial_id, status, <metric>, iteration, config, and when it kept one, its "
            "best checkpoint: checkpoint (where it is), checkpoint_iteration, checkpoint_score ({metric: value})} "
            "when one trial is asked for (-n 1, the default), a list of them "
            "for -n 2 or more, and always a list for a Pareto front. "
            "tsv: a header line, then one tab-separated line per trial, the config as JSON.",
            show_default=False,
        ),
    ] = None,
    metric: MetricOpt = None,
    mode: ModeOpt = None,
    include_failed: Annotated[
        bool,
        typer.Option(
            "--include-failed",
            help="Rank failed trials and non-finite values (NaN, -inf: a diverged trial) too; by default only "
            "trials that did not fail and reported a finite value are ranked.",
        ),
    ] = False,
) -> None:
    """Print the best trial(s): metric value, configuration and checkpoint; with several metrics, the Pareto front.

    Only trials that did not fail and whose value is finite are ranked (--include-failed: all).
    """
    from raytuner.errors import ExperimentError

    ranking = open_experiment(experiment, storage, metric, mode).ranking(n, include_failed=include_failed)
    if ranking.is_front:
        _print_front(ranking, format_ or Format.TABLE)
        return
    name, (metric_name, mode_name) = ranking.name, ranking.objectives[0]
    if not ranking.trials:
        if include_failed:
            raise ExperimentError(f"{name}: no trial has reported {metric_name} yet")
        raise ExperimentError(
            f"{name}: no trial that did not fail has reported a finite {metric_name} yet; "
            "raytuner best --include-failed ranks every trial"
        )
    rows: list[dict[str, Any]] = [
        {"trial_id": t.trial_id, "status": t.status, metric_name: t.values[metric_name], "iteration": t.iteration}
        | {"config": t.config}
        for t in ranking.trials
    ]
    for row in rows:
        schedule = ranking.schedules.get(row["trial_id"])
        if schedule:
            row["schedule"] = [{"from_step": s.start_step, "trial_id": s.trial_id, "config": s.config} for s in schedule]
    for row in rows:  # where each one's best checkpoint is, when it kept one (raytuner checkpoint copies it)
        if row["trial_id"] in ranking.checkpoints:
            row |= ranking.checkpoints[row["trial_id"]].fields()
    count = n or 1
    chosen = format_ or Format.YAML
    if chosen is Format.JSON:
        # one trial asked for: the object itself, ready to paste; several: a list (documented)
        typer.echo(json_text(rows[0] if count == 1 else rows))
        return
    if chosen is Format.TSV:
        extra = [name for name in ("schedule", "checkpoint", "checkpoint_iteration", "checkpoint_score") if name in rows[0]]
        columns = ["trial_id", "status", metric_name, "iteration", "config", *extra]
        typer.echo(rows_text(OutputFormat.TSV, columns, rows))
        return
    if chosen is Format.TABLE:
        _print_table(
            f"{name}: best {len(rows)} by {metric_name} ({mode_name})",
            ["#", "trial", "status", metric_name, "iteration", "config", *(["checkpoint"] if "checkpoint" in rows[0] else [])],
            [
                [str(i), r["trial_id"], r["status"], r[metric_name], r["iteration"], r["config"]]
                + ([r.get("checkpoint")] if "checkpoint" in rows[0] else [])
                for i, r in enumerate(rows, 1)
            ],
        )
        return
    import yaml

    for i, row in enumerate(rows):
        if i:
            typer.echo("---")
        typer.echo(f"# {name}: trial {row['trial_id']} ({row['status']}), {metric_name} = {row[metric_name]:.6g} ({mode_name})")
        if "checkpoint" in row:  # a comment: the YAML stays a spec's space, ready to paste
            [(score, value)] = row["checkpoint_score"].items()
            typer.echo(f"# checkpoint: {row['checkpoint']} (iteration {row['checkpoint_iteration']}, {score} = {_number(value)})")
        for segment in row.get("schedule", []):
            typer.echo(f"# from step {segment['from_step']} (trial {segment['trial_id']}): {json.dumps(segment['config'])}")
        typer.echo(yaml.safe_dump({"space": row["config"]}, sort_keys=False).rstrip())


def _print_front(ranking: Ranking, format_: Format) -> None:
    from raytuner.errors import ExperimentError

    names = [metric for metric, _ in ranking.objectives]
    if not ranking.trials:
        raise ExperimentError(
            f"{ranking.name}: no completed trial has reported {', '.join(names)} yet, so there is no Pareto front"
        )
    if format_ in (Format.JSON, Format.TSV):
        rows = [
            {
                "trial_id": t.trial_id,
                "status": t.status,
                **{name: t.values.get(name) for name in names},
                "iterations": t.iteration,
                "config": t.config,
            }
            for t in ranking.trials
        ]
        output = OutputFormat.JSON if format_ is Format.JSON else OutputFormat.TSV
        typer.echo(rows_text(output, ["trial_id", "status", *names, "iterations", "config"], rows))
        return
    objectives = ", ".join(f"{metric} ({mode})" for metric, mode in ranking.objectives)
    size = ranking.front_size
    shown = f"{len(ranking.trials)} of {size}" if len(ranking.trials) < (size or 0) else f"{size}"
    if format_ is Format.TABLE:
        _print_table(
            f"{ranking.name}: Pareto front of {objectives}: {shown} trials (of {ranking.completed} completed), "
            f"by {names[0]}",
            ["#", "trial", *names, "iterations", "config"],
            [
                [str(i), t.trial_id, *(t.values.get(name) for name in names), t.iteration, t.config]
                for i, t in enumerate(ranking.trials, 1)
            ],
        )
        return
    import yaml

    for i, t in enumerate(ranking.trials):
        if i:
            typer.echo("---")
        values = ", ".join(f"{name} = {_number(t.values.get(name))}" for name in names)
        typer.echo(f"# {ranking.name}: trial {t.trial_id}, Pareto front {i + 1}/{size} of {objectives}: {values}")
        typer.echo(yaml.safe_dump({"space": t.config}, sort_keys=False).rstrip())


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _print_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.table import Table
    from rich.text import Text

    from raytuner.cli.output import add_key_column, print_table
    from raytuner.cli.render import format_config, format_value, stdout_console

    console = stdout_console()
    table = Table(title=title)
    for column in columns:
        if column == "trial":
            add_key_column(table, column)
        else:
            table.add_column(column, overflow="fold")
    for row in rows:
        cells: list[Any] = []
        for value in row:
            if isinstance(value, dict):
                limit = 80 if console.is_terminal else None
                cells.append(Text(format_config(value, limit)))  # Text: brackets in configs are not markup
            else:
                cells.append("-" if value is None else format_value(value))
        table.add_row(*cells)
    print_table(table, console)
