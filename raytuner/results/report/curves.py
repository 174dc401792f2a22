"""Learning curves: the metric against ``training_iteration``, one line per trial."""

from __future__ import annotations

from collections import defaultdict

from raytuner.results.report.data import ExperimentData
from raytuner.results.report.early_stopping import asha_rungs
from raytuner.results.report.section import Chart, ChartKind, Omitted, Section
from raytuner.results.report.svg import BEST_COLOR, MUTED, STATUS_COLORS, Figure, Scale, fmt, status_color

TITLE = "Learning curves"
# Past this many trials, lines get thinner and fainter so the bundle stays readable.
_CROWDED = 60


def chart(data: ExperimentData) -> Section:
    curves: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for report in data.reports:
        if report.value is not None:
            curves[report.trial_id].append((report.iteration, report.value))
    if not curves:
        return Omitted(ChartKind.LEARNING_CURVES, TITLE, f"No trial reported a numeric {data.metric}.")
    for points in curves.values():
        points.sort()
    iterations = [i for points in curves.values() for i, _ in points]
    values = [v for points in curves.values() for _, v in points]
    fig = Figure(ChartKind.LEARNING_CURVES.value, 1000, 420, top=30)
    x = Scale.fit(iterations, fig.left, fig.right, log=False, pad=0.02)
    y = Scale.fit(values, fig.bottom, fig.top)
    fig.axes(x, y, "training_iteration", data.metric)
    rungs = (
        asha_rungs(data.scheduler)
        if data.scheduler.get("time_attr", "training_iteration") == "training_iteration"
        else []
    )
    for rung in rungs:
        if x.lo <= rung <= x.hi:
            fig.line(x(rung), fig.top, x(rung), fig.bottom, MUTED, 1, dash="4 4")
            fig.text(x(rung) + 3, fig.top + 12, f"rung {fmt(rung)}", size=10, color=MUTED)
    status = data.status_of()
    best = data.best_trial
    crowded = len(curves) > _CROWDED
    order = sorted(curves, key=lambda tid: (tid == (best.trial_id if best else None), status.get(tid) == "completed"))
    for trial_id in order:
        if best is not None and trial_id == best.trial_id:
            continue
        points = curves[trial_id]
        state = status.get(trial_id, "?")
        fig.polyline(
            [(x(i), y(v)) for i, v in points],
            status_color(state),
            1.0 if crowded else 1.6,
            0.45 if crowded else 0.8,
            tip=f"trial {trial_id} ({state}): {len(points)} reports, last {data.metric} = {fmt(points[-1][1])}",
        )
    if best is not None and best.trial_id in curves:
        points = curves[best.trial_id]
        fig.polyline(
            [(x(i), y(v)) for i, v in points],
            BEST_COLOR,
            2.8,
            tip=f"best trial {best.trial_id} ({best.status}): best {data.metric} = {fmt(best.best or 0.0)}",
            css="series best",
        )
    present = sorted({status.get(tid, "") for tid in curves} & set(STATUS_COLORS))
    fig.legend([("best trial", BEST_COLOR)] + [(s, status_color(s)) for s in present])
    caption = (
        f"{len(curves)} trials, coloured by status; the best trial is drawn in black on top."
        + (" Dashed lines are the ASHA rungs from spec.yaml." if rungs else "")
        + " Hover a line for its trial id."
    )
    return Chart(ChartKind.LEARNING_CURVES, TITLE, fig.render(TITLE), caption, fig.width, fig.height)
