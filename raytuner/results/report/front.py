"""The Pareto front of a multi-objective experiment: the first two objectives as a scatter.

Every trial with both values is a faint dot coloured by status; the trials on the front
(non-dominated among completed trials by their last values, :mod:`raytuner.results.pareto`)
are dark dots joined by the front's staircase: the edge of what the front dominates.
"""

from __future__ import annotations

from html import escape

from raytuner.results.report import sample
from raytuner.results.report.data import ExperimentData, Trial
from raytuner.results.report.section import Chart, ChartKind, Omitted, Section
from raytuner.results.report.svg import BEST_COLOR, STATUS_COLORS, Figure, Scale, fmt, status_color

TITLE = "Pareto front"
MAX_ROWS = 20


def chart(data: ExperimentData) -> Section:
    if len(data.objectives) < 2:
        return Omitted(ChartKind.PARETO_FRONT, TITLE, "A single metric has no Pareto front (give metric a list).")
    (xm, xmode), (ym, ymode) = data.objectives[0], data.objectives[1]
    placed = [(t, t.values.get(xm), t.values.get(ym)) for t in data.trials]
    points = [(t, x, y) for t, x, y in placed if x is not None and y is not None]
    if not points:
        return Omitted(ChartKind.PARETO_FRONT, TITLE, f"No trial has reported both {xm} and {ym} yet.")
    xsign, ysign = (1.0 if xmode == "max" else -1.0), (1.0 if ymode == "max" else -1.0)
    front = sorted(((t, x, y) for t, x, y in points if t.pareto), key=lambda p: (-xsign * p[1], -ysign * p[2]))
    fig = Figure(ChartKind.PARETO_FRONT.value, 1000, 460, top=30)
    x = Scale.fit([p[1] for p in points], fig.left, fig.right)
    y = Scale.fit([p[2] for p in points], fig.bottom, fig.top)
    fig.axes(x, y, f"{xm} ({xmode}, last value)", f"{ym} ({ymode}, last value)")
    behind = [(t, vx, vy) for t, vx, vy in points if not t.pareto]
    shown = ""
    if sample.is_large(data, len(points)):  # the axes span every trial; the dots behind the front are a sample
        count = len(behind)
        behind = sample.spread(behind, sample.TOP + sample.OTHERS)
        shown = f"dots: the whole front and {len(behind)} of the {sample.number(count)} other trials"
        sample.mark(fig, shown)
    for trial, vx, vy in behind:
        fig.circle(x(vx), y(vy), 3.5, status_color(trial.status), 0.35, _tip(trial, data), css="dot trial")
    staircase: list[tuple[float, float]] = []
    for i, (_, vx, vy) in enumerate(front):
        if i:
            staircase.append((x(vx), staircase[-1][1]))  # the corner both neighbours dominate
        staircase.append((x(vx), y(vy)))
    if len(staircase) > 1:
        fig.polyline(staircase, BEST_COLOR, 1.8, tip=f"Pareto front ({len(front)} trials)", css="series front")
    for trial, vx, vy in front:
        fig.add('<g stroke="#ffffff" stroke-width="1">')
        fig.circle(x(vx), y(vy), 5.5, BEST_COLOR, 1.0, _tip(trial, data, on_front=True), css="dot front")
        fig.add("</g>")
    present = sorted({t.status for t, _, _ in points if not t.pareto} & set(STATUS_COLORS))
    fig.legend([("Pareto front", BEST_COLOR)] + [(f"other trials, {s}", status_color(s)) for s in present])
    completed = sum(1 for t in data.trials if t.status == "completed")
    caption = (
        f"Each dot is a trial at its last reported {xm} and {ym}. The {len(front)} dark dots are the Pareto front: "
        f"completed trials ({completed} in all) that no other completed trial matches or beats on every objective; "
        "the line joining them bounds what the front dominates."
    )
    if len(data.objectives) > 2:
        others = ", ".join(m for m, _ in data.objectives[2:])
        caption += (
            f" Only the first two of {len(data.objectives)} objectives are drawn ({others} not shown): a front trial "
            "can look dominated here and be better on the others."
        )
    if shown:
        caption += f" A sample: {shown}, evenly spaced in table order."
    return Chart(ChartKind.PARETO_FRONT, TITLE, fig.render(TITLE), caption, fig.width, fig.height, _table(front, data), shown)


def _tip(trial: Trial, data: ExperimentData, on_front: bool = False) -> str:
    values = ", ".join(f"{m} = {fmt(v)}" for m, v in trial.values.items() if v is not None)
    where = "on the Pareto front" if on_front else trial.status
    return f"trial {trial.trial_id} ({where}): {values}"


def _table(front: list[tuple[Trial, float, float]], data: ExperimentData) -> str:
    names = [m for m, _ in data.objectives]
    head = "".join(f"<th>{escape(n)}</th>" for n in names)
    rows = []
    for i, (trial, _, _) in enumerate(front[:MAX_ROWS], start=1):
        cells = "".join(
            f"<td class='num'>{escape(fmt(v)) if (v := trial.values.get(n)) is not None else '-'}</td>" for n in names
        )
        config = ", ".join(f"{k}={fmt(v) if isinstance(v, float) else v}" for k, v in trial.config.items() if v is not None)
        rows.append(f"<tr><td>{i}</td><td><code>{escape(trial.trial_id)}</code></td>{cells}<td><code>{escape(config)}</code></td></tr>")
    more = f"<p class='note'>and {len(front) - MAX_ROWS} more on the front.</p>" if len(front) > MAX_ROWS else ""
    return (
        f"<table class='front'><thead><tr><th>#</th><th>trial</th>{head}<th>configuration</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>{more}"
    )
