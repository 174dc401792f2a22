"""Final model (``raytuner refit``): the search's best validation score next to the refit
model's test score, and the refit's curve on the test split, epoch by epoch."""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path
from typing import Any

from raytuner.results.report.data import ExperimentData
from raytuner.results.report.section import Chart, ChartKind, Omitted, Section
from raytuner.results.report.svg import BEST_COLOR, Figure, Scale, fmt

TITLE = "Final model"
METRICS = Path("refit") / "metrics.json"
TEST_COLOR = "#1f77b4"


def applies(data: ExperimentData) -> bool:
    """Only an experiment ``raytuner refit`` has written ``refit/metrics.json`` into."""
    return (data.folder / METRICS).is_file()


def chart(data: ExperimentData) -> Section:
    try:
        record = json.loads((data.folder / METRICS).read_text())
        metric = str(record["metric"])
        search = record["search"]
        refit = record["refit"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return Omitted(ChartKind.FINAL_MODEL, TITLE, f"refit/metrics.json could not be read ({exc}).")
    tested = "test_" + metric.removeprefix("val_")
    searched = _number(search.get(metric))
    curve = [(i + 1, _number(row.get(tested))) for i, row in enumerate(record.get("curve") or [])]
    points = [(epoch, value) for epoch, value in curve if value is not None]
    table = _table(metric, tested, search, refit, searched)
    if not points:
        what = "its own code ran once" if "run" in refit else "it was refit without a test split"
        return Omitted(
            ChartKind.FINAL_MODEL,
            TITLE,
            f"The best configuration (trial {search.get('trial_id')}) was refit, but {what}: no {tested} to show. "
            f"The search's best {metric} was {fmt(searched) if searched is not None else 'not recorded'}.",
        )
    fig = Figure(ChartKind.FINAL_MODEL.value, 1000, 340, top=30)
    epochs = [float(epoch) for epoch, _ in points]
    x = Scale.fit([1.0, max(epochs)], fig.left, fig.right, log=False, pad=0.02)
    y = Scale.fit([v for _, v in points] + ([searched] if searched is not None else []), fig.bottom, fig.top, log=False)
    fig.axes(x, y, "epoch of the refit", metric.removeprefix("val_"))
    if searched is not None:
        fig.line(fig.left, y(searched), fig.right, y(searched), BEST_COLOR, 1.5, dash="6 4")
    fig.polyline([(x(e), y(v)) for e, v in points], TEST_COLOR, 2.2, tip=f"refit model: {tested} by epoch")
    for epoch, value in points:
        fig.circle(x(epoch), y(value), 3, TEST_COLOR, 0.9, f"epoch {epoch}: {tested} = {fmt(value)}")
    legend = [(f"refit model, {tested}", TEST_COLOR)]
    if searched is not None:
        legend.append((f"search's best {metric} (trial {search.get('trial_id')})", BEST_COLOR))
    fig.legend(legend)
    last = points[-1][1]
    gap = "" if searched is None else f"; the search's best {metric} was {fmt(searched)}, {_gap(searched, last, data)}"
    caption = (
        f"The best configuration retrained on every row the search saw, for {refit.get('epochs', len(points))} epochs, "
        f"then scored on the test split no trial saw ({refit.get('test_rows', '?')} rows): {tested} {fmt(last)}{gap}. "
        "The search's number is optimistic: it is the best of many tries on the same validation rows."
    )
    return Chart(ChartKind.FINAL_MODEL, TITLE, fig.render(TITLE), caption, fig.width, fig.height, table)


def _gap(searched: float, tested: float, data: ExperimentData) -> str:
    worse = data.is_better(searched, tested)
    return f"{'worse' if worse else 'better'} by {fmt(abs(searched - tested))} on data it never saw"


def _table(metric: str, tested: str, search: dict[str, Any], refit: dict[str, Any], searched: float | None) -> str:
    score = _number(refit.get(tested))
    rows = [
        (f"search: best {metric}", fmt(searched) if searched is not None else "", f"trial {search.get('trial_id')}"),
        (f"refit: {tested}", fmt(score) if score is not None else "", ""),
        ("refit: epochs", str(refit.get("epochs", refit.get("iterations", ""))), ""),
        ("refit: rows trained on / tested on", f"{refit.get('train_rows', '')} / {refit.get('test_rows', '')}", ""),
    ]
    cells = "".join(
        f"<tr><td>{escape(name)}</td><td>{escape(value)}</td><td>{escape(note)}</td></tr>" for name, value, note in rows
    )
    return f"<table class='final-model'><tbody>{cells}</tbody></table>"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)
