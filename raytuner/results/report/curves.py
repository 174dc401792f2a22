"""Learning curves: the metric against ``training_iteration``, one line per trial; for a large
experiment, the best trials' lines over the middle 80 % band of all of them (:mod:`.sample`)."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from raytuner.results.report import sample
from raytuner.results.report.data import ExperimentData
from raytuner.results.report.early_stopping import asha_rungs
from raytuner.results.report.section import Chart, ChartKind, Omitted, Section
from raytuner.results.report.svg import BEST_COLOR, MUTED, STATUS_COLORS, Figure, Scale, fmt, status_color

if TYPE_CHECKING:
    import numpy as np

TITLE = "Learning curves"
# Past this many trials, lines get thinner and fainter so the bundle stays readable.
_CROWDED = 60
BAND = (0.1, 0.5, 0.9)  # the quantiles of every trial's value drawn under a large experiment's best lines
BAND_COLOR = "#9aa3ad"


def chart(data: ExperimentData) -> Section:
    if sample.is_large(data):
        return _large(data)
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
    rungs = _draw_rungs(fig, x, data)
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


def _large(data: ExperimentData) -> Section:
    """The best trials' curves over each iteration's 10th-90th percentile band of every trial."""
    import numpy as np

    reports = data.reports
    has = ~np.isnan(reports.value)
    trial, iteration, value = reports.trial[has], reports.iteration[has], reports.value[has]
    if not len(value):
        return Omitted(ChartKind.LEARNING_CURVES, TITLE, f"No trial reported a numeric {data.metric}.")
    by_trial = np.argsort(trial, kind="stable")
    codes, starts, counts = np.unique(trial[by_trial], return_index=True, return_counts=True)
    index = {reports.ids[c]: (s, n) for c, s, n in zip(codes.tolist(), starts.tolist(), counts.tolist(), strict=True)}
    with_curve = [t for t in sample.ranked(data) if t.trial_id in index]
    top, _ = sample.best_and_spread(with_curve, sample.TOP, 0)
    lines = {}
    for t in top:
        start, count = index[t.trial_id]
        rows = by_trial[start : start + count]
        rows = rows[np.lexsort((value[rows], iteration[rows]))]  # by iteration, as the whole chart sorts points
        rows = rows[sample.thin(len(rows))]
        lines[t.trial_id] = list(zip(iteration[rows].tolist(), value[rows].tolist(), strict=True))
    steps, low, middle, high = _band(iteration, value)
    fig = Figure(ChartKind.LEARNING_CURVES.value, 1000, 420, top=30)
    x = Scale.fit(iteration.tolist(), fig.left, fig.right, log=False, pad=0.02)
    drawn = [v for points in lines.values() for _, v in points]
    y = Scale.fit(drawn + low.tolist() + high.tolist(), fig.bottom, fig.top)
    fig.axes(x, y, "training_iteration", data.metric)
    rungs = _draw_rungs(fig, x, data)
    total = sample.number(len(index))
    xs = [x(float(s)) for s in steps.tolist()]
    band = list(zip(xs, (y(v) for v in high.tolist()), strict=True))
    band += list(zip(reversed(xs), (y(v) for v in reversed(low.tolist())), strict=True))
    fig.polygon(band, BAND_COLOR, 0.35, tip=f"10th to 90th percentile of {data.metric} over all {total} trials")
    fig.polyline(
        list(zip(xs, (y(v) for v in middle.tolist()), strict=True)),
        BAND_COLOR,
        1.6,
        dash="5 4",
        tip=f"median {data.metric} over all {total} trials",
        css="series median",
    )
    status = data.status_of()
    best = data.best_trial
    for t in reversed(top):  # the best on top
        points = lines[t.trial_id]
        is_best = best is not None and t.trial_id == best.trial_id
        state = status.get(t.trial_id, "?")
        fig.polyline(
            [(x(i), y(v)) for i, v in points],
            BEST_COLOR if is_best else status_color(state),
            2.8 if is_best else 1.2,
            1.0 if is_best else 0.7,
            tip=f"{'best trial' if is_best else 'trial'} {t.trial_id} ({state}): {index[t.trial_id][1]} reports, "
            f"best {data.metric} = {fmt(t.best) if t.best is not None else 'n/a'}",
            css="series best" if is_best else "series",
        )
    shown = f"best {len(top)} of {total} trials and the middle 80 % band"
    sample.mark(fig, shown)
    present = sorted({status.get(t.trial_id, "") for t in top} & set(STATUS_COLORS))
    fig.legend([("best trial", BEST_COLOR), ("middle 80 % of all", BAND_COLOR)] + [(s, status_color(s)) for s in present])
    caption = (
        f"A sample: the {len(top)} best of {total} trials by best {data.metric}, coloured by status (the best in black), "
        f"over the band from the 10th to the 90th percentile of all {total} trials' {data.metric} at each iteration "
        f"(dashed: the median), computed from all {sample.number(len(value))} reports; a line has at most "
        f"{sample.MAX_POINTS} points."
        + (" Dashed lines are the ASHA rungs from spec.yaml." if rungs else "")
        + " Hover a line for its trial id."
    )
    return Chart(ChartKind.LEARNING_CURVES, TITLE, fig.render(TITLE), caption, fig.width, fig.height, sample=shown)


def _band(iteration: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each iteration (at most ``sample.MAX_POINTS`` of them, evenly spaced) and the :data:`BAND`
    quantiles of the values reported at it (linear interpolation, as numpy's default)."""
    import numpy as np

    order = np.lexsort((value, iteration))
    ordered = value[order]
    steps, starts, counts = np.unique(iteration[order], return_index=True, return_counts=True)
    keep = sample.thin(len(steps))
    steps, starts, counts = steps[keep], starts[keep], counts[keep]

    def quantile(q: float) -> np.ndarray:
        position = starts + q * (counts - 1)
        below = np.floor(position).astype(np.int64)
        above = np.minimum(below + 1, starts + counts - 1)
        fraction = position - below
        interpolated: np.ndarray = ordered[below] * (1 - fraction) + ordered[above] * fraction
        return interpolated

    low, middle, high = (quantile(q) for q in BAND)
    return steps, low, middle, high


def _draw_rungs(fig: Figure, x: Scale, data: ExperimentData) -> list[float]:
    """ASHA's rungs as dashed verticals, where the x axis counts iterations; the rungs."""
    if data.scheduler.get("time_attr", "training_iteration") != "training_iteration":
        return []
    rungs = asha_rungs(data.scheduler)
    for rung in rungs:
        if x.lo <= rung <= x.hi:
            fig.line(x(rung), fig.top, x(rung), fig.bottom, MUTED, 1, dash="4 4")
            fig.text(x(rung) + 3, fig.top + 12, f"rung {fmt(rung)}", size=10, color=MUTED)
    return rungs
