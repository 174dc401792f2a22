"""``raytuner compare``: two experiments side by side."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer

from raytuner.cli import strict_json
from raytuner.cli.errors import handles_errors
from raytuner.cli.options import JsonOpt, StorageRootOpt
from raytuner.cli.show import EXPERIMENT_HELP, MetricOpt, ModeOpt, warn_assumed_mode

if TYPE_CHECKING:
    from raytuner.results.compare import Comparison

app = typer.Typer()


@app.command("compare")
@handles_errors
def compare(
    first: Annotated[str, typer.Argument(help=f"First {EXPERIMENT_HELP[0].lower()}{EXPERIMENT_HELP[1:]}", show_default=False)],
    second: Annotated[str, typer.Argument(help="Second experiment: the same kinds of reference.", show_default=False)],
    storage: StorageRootOpt = "runs",
    metric: MetricOpt = None,
    mode: ModeOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Compare two experiments: best metric, trials by status, config and spec differences."""
    from raytuner.cli.render import stdout_console
    from raytuner.results.compare import compare_tables
    from raytuner.results.reader import open_experiment

    opened = (open_experiment(ref, storage, metric=metric, mode=mode) for ref in (first, second))
    with next(opened) as left, next(opened) as right:
        warn_assumed_mode(left)
        warn_assumed_mode(right)
        result = compare_tables(left, right, storage)
    if json_:
        payload = asdict(result)
        payload["better"] = result.better
        typer.echo(strict_json.dumps(payload, indent=2))
        return
    console = stdout_console()
    for renderable in comparison_tables(result):
        console.print(renderable)


def comparison_tables(result: Comparison) -> list[Any]:
    """Rich renderables: the two sides, then the differing best-config and spec keys."""
    from rich.table import Table

    from raytuner.cli.render import format_value

    a, b = result.left, result.right
    better = result.better
    head = Table(title="compare")
    head.add_column("")
    head.add_column(a.name + (" (better)" if better == "left" else ""))
    head.add_column(b.name + (" (better)" if better == "right" else ""))
    head.add_row("objective", f"{a.metric} ({a.mode})", f"{b.metric} ({b.mode})")
    head.add_row("best", _value(a.best_value), _value(b.best_value))
    head.add_row("best trial", a.best_trial or "-", b.best_trial or "-")
    head.add_row("trials", _counts(a.trials), _counts(b.trials))
    out: list[Any] = [head]
    for title, rows in (("best configuration differences", result.config), ("spec differences", result.spec)):
        if not rows:
            continue
        table = Table(title=title)
        for column in ("key", a.name, b.name):
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(row.key, _cell(row.left, format_value), _cell(row.right, format_value))
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
