"""``raytuner compare``: two or more experiments side by side."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer

from raytuner.cli.errors import handles_errors
from raytuner.cli.options import FormatOpt, JsonOpt, StorageRootOpt
from raytuner.cli.show import EXPERIMENT_HELP, MetricOpt, ModeOpt, open_experiment

if TYPE_CHECKING:
    from raytuner.results.compare import Comparison

app = typer.Typer()

# --format tsv: one line per experiment
TSV_COLUMNS = ("name", "source", "metric", "mode", "rank", "best_value", "best_trial", "trials", "best_config")


@app.command("compare")
@handles_errors
def compare(
    experiments: Annotated[
        list[str],
        typer.Argument(help=f"Two or more. {EXPERIMENT_HELP}", show_default=False),
    ],
    storage: StorageRootOpt = "runs",
    metric: MetricOpt = None,
    mode: ModeOpt = None,
    format_: FormatOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Compare two or more experiments: best metric and rank, trials by status, config and spec differences.

    --format json: {experiments: [{name, source, metric, mode, trials, best_value, best_trial,
    best_config, rank}], config: [{key, values}], spec: [{key, values}], notes}, values in the
    order given; with two experiments also left, right and better ("left", "right", "tie" or
    null), and left/right in each difference, as before. --format tsv: one line per experiment.
    """
    from raytuner.cli.output import OutputFormat, chosen_format, json_text, print_table, rows_text
    from raytuner.cli.render import stdout_console
    from raytuner.errors import UsageError

    if len(experiments) < 2:
        raise UsageError(f"compare needs two or more experiments, got {len(experiments)}: {', '.join(experiments)}")
    chosen = chosen_format(format_, json_)
    first, *others = [open_experiment(ref, storage, metric, mode) for ref in experiments]
    result = first.compare(*others)
    if chosen is not OutputFormat.TABLE:
        payload = comparison_payload(result)
        typer.echo(rows_text(chosen, TSV_COLUMNS, payload["experiments"]) if chosen is OutputFormat.TSV else json_text(payload))
        return
    console = stdout_console()
    for renderable in comparison_tables(result):
        if isinstance(renderable, str):
            console.print(renderable, markup=False)
        else:
            print_table(renderable, console)


def comparison_payload(result: Comparison) -> dict[str, Any]:
    """The comparison as plain data: each experiment with its rank, then the differences."""
    sides = [{**asdict(side), "rank": rank} for side, rank in zip(result.sides, result.ranks(), strict=True)]
    two = len(sides) == 2

    def differences(rows: Any) -> list[dict[str, Any]]:
        out = []
        for row in rows:
            entry: dict[str, Any] = {"key": row.key, "values": list(row.values)}
            if two:  # the two-experiment form scripts were written against
                entry["left"], entry["right"] = row.values
            out.append(entry)
        return out

    payload: dict[str, Any] = {
        "experiments": sides,
        "config": differences(result.config),
        "spec": differences(result.spec),
        "notes": result.notes,
    }
    if two:
        payload.update(left=sides[0], right=sides[1], better=result.better)
    return payload


def comparison_tables(result: Comparison) -> list[Any]:
    """Rich tables (and lines): the experiments side by side, then the differing best-config and spec keys."""
    from rich.table import Table

    from raytuner.cli.output import add_key_column
    from raytuner.cli.render import format_value

    sides = result.sides
    ranks = result.ranks()
    mark = " (better)" if len(sides) == 2 else " (best)"
    head = Table(title="compare")
    head.add_column("")
    for side, rank in zip(sides, ranks, strict=True):
        winner = rank == 1 and (len(sides) > 2 or result.better in ("left", "right"))
        head.add_column(side.name + (mark if winner else ""), overflow="fold")
    head.add_row("objective", *(f"{side.metric} ({side.mode})" for side in sides))
    head.add_row("best", *(_value(side.best_value) for side in sides))
    if len(sides) > 2 and result.ranked:
        head.add_row("rank", *("-" if rank is None else str(rank) for rank in ranks))
    head.add_row("best trial", *(side.best_trial or "-" for side in sides))
    head.add_row("trials", *(_counts(side.trials) for side in sides))
    out: list[Any] = [head]
    for title, rows in (("best configuration differences", result.config), ("spec differences", result.spec)):
        if not rows:
            continue
        table = Table(title=title)
        add_key_column(table, "key")
        for side in sides:
            table.add_column(side.name, overflow="fold")
        for row in rows:
            table.add_row(row.key, *(_cell(value, format_value) for value in row.values))
        out.append(table)
    if not result.config:
        out.append("best configurations: identical")
    out.extend(f"note: {note}" for note in result.notes)
    return out


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "-"


def _cell(value: Any, fmt: Any) -> str:
    return "-" if value is None else str(fmt(value))
