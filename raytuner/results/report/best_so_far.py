"""Best so far over time: the running best of the metric across all trials, by wall time; for
a large experiment computed on every report and drawn capped (:mod:`.sample`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from raytuner.results.records import rankable
from raytuner.results.report import sample
from raytuner.results.report.data import ExperimentData
from raytuner.results.report.section import Chart, ChartKind, Omitted, Section
from raytuner.results.report.svg import BEST_COLOR, STATUS_COLORS, Figure, Scale, fmt, status_color

if TYPE_CHECKING:
    import numpy as np

    from raytuner.results.report.data import Reports

TITLE = "Best so far over time"


def chart(data: ExperimentData) -> Section:
    if sample.is_large(data):
        return _large(data)
    scored = [(r, r.value) for r in data.reports if r.value is not None]
    if not scored:
        return Omitted(ChartKind.BEST_SO_FAR, TITLE, f"No trial reported a numeric {data.metric}.")
    status = data.status_of()
    steps: list[tuple[float, float, str, int]] = []  # time, best, trial, iteration (of trials that did not fail)
    for report, value in scored:
        if rankable(status.get(report.trial_id, ""), value) and (not steps or data.is_better(value, steps[-1][1])):
            steps.append((report.time_s, value, report.trial_id, report.iteration))
    if not steps:
        return Omitted(ChartKind.BEST_SO_FAR, TITLE, f"Every trial that reported {data.metric} failed.")
    end = max(r.time_s for r in data.reports)
    last_by_trial = {report.trial_id: report for report, _ in scored}
    fig = Figure(ChartKind.BEST_SO_FAR.value, 1000, 380, top=30)
    x = Scale.fit([0.0, end], fig.left, fig.right, log=False, pad=0.02)
    y = Scale.fit(
        [r.value for r in last_by_trial.values() if r.value is not None] + [s[1] for s in steps], fig.bottom, fig.top
    )
    fig.axes(x, y, "seconds since the first report", f"{data.metric} ({data.mode})")
    _draw_best(fig, x, y, steps, end, data.metric)
    # A marker where the lead passes to another trial (not at every improvement of the leader).
    leaders = [s for i, s in enumerate(steps) if i == 0 or s[2] != steps[i - 1][2]]
    for t, best, trial_id, iteration in leaders:
        fig.circle(
            x(t),
            y(best),
            3.5,
            BEST_COLOR,
            1.0,
            f"trial {trial_id} takes the lead: {fmt(best)} at iteration {iteration}, {t:.1f} s",
            css="dot best",
        )
    for trial_id, report in last_by_trial.items():
        value = report.value or 0.0
        fig.add('<g stroke="#ffffff" stroke-width="0.8">')
        fig.circle(
            x(report.time_s),
            y(value),
            4,
            status_color(status.get(trial_id, "")),
            0.75,
            f"trial {trial_id} ({status.get(trial_id, '?')}): last {data.metric} = {fmt(value)} "
            f"at iteration {report.iteration}, {report.time_s:.1f} s",
        )
        fig.add("</g>")
    present = sorted({status.get(tid, "") for tid in last_by_trial} & set(STATUS_COLORS))
    fig.legend([("best so far", BEST_COLOR)] + [(f"last report, {s}", status_color(s)) for s in present])
    final = steps[-1]
    caption = (
        f"The black step line is the best {data.metric} reported by any trial that did not fail up to that moment "
        f"({len(leaders)} changes of leading trial, black dots; "
        f"final {fmt(final[1])} by trial {final[2]} at {final[0]:.1f} s). "
        "Each dot is a trial's last report, coloured by its status."
    )
    return Chart(ChartKind.BEST_SO_FAR, TITLE, fig.render(TITLE), caption, fig.width, fig.height)


def _large(data: ExperimentData) -> Section:
    """The same chart from the report columns: every step of the running best is found, at most
    ``sample.MAX_POINTS`` of them (and of the changes of lead) are drawn, and the last-report dots
    are the best trials' and a uniform sample of the rest."""
    import numpy as np

    reports = data.reports
    status = data.status_of()
    scored = ~np.isnan(reports.value)
    if not scored.any():
        return Omitted(ChartKind.BEST_SO_FAR, TITLE, f"No trial reported a numeric {data.metric}.")
    failed = np.array([status.get(tid, "") == "error" for tid in reports.ids], dtype=bool)
    counted = np.flatnonzero(scored & ~failed[reports.trial])  # rankable: scored, by a trial that did not fail
    if not len(counted):
        return Omitted(ChartKind.BEST_SO_FAR, TITLE, f"Every trial that reported {data.metric} failed.")
    signed = data.sign * reports.value[counted]
    before = np.concatenate(([-np.inf], np.maximum.accumulate(signed)[:-1]))
    rows = counted[signed > before]  # a report that beats every earlier one: a step
    leads = rows[np.concatenate(([True], reports.trial[rows][1:] != reports.trial[rows][:-1]))]
    steps = [_step(reports, r) for r in rows[sample.thin(len(rows))].tolist()]
    leaders = [_step(reports, r) for r in leads[sample.thin(len(leads))].tolist()]
    end = float(reports.time_s.max())
    last_rows = _last_rows(reports.trial, np.flatnonzero(scored))
    last = {reports.ids[reports.trial[r]]: r for r in last_rows.tolist()}
    top, others = sample.best_and_spread([t for t in sample.ranked(data) if t.trial_id in last])
    fig = Figure(ChartKind.BEST_SO_FAR.value, 1000, 380, top=30)
    x = Scale.fit([0.0, end], fig.left, fig.right, log=False, pad=0.02)
    y = Scale.fit(reports.value[last_rows].tolist() + [s[1] for s in steps], fig.bottom, fig.top)
    fig.axes(x, y, "seconds since the first report", f"{data.metric} ({data.mode})")
    _draw_best(fig, x, y, steps, end, data.metric)
    for t, best, trial_id, iteration in leaders:
        tip = f"trial {trial_id} takes the lead: {fmt(best)} at iteration {iteration}, {t:.1f} s"
        fig.circle(x(t), y(best), 3.5, BEST_COLOR, 1.0, tip, css="dot best")
    for trial in [*others, *reversed(top)]:  # the best on top
        r = last[trial.trial_id]
        value, moment, state = float(reports.value[r]), float(reports.time_s[r]), status.get(trial.trial_id, "?")
        fig.add('<g stroke="#ffffff" stroke-width="0.8">')
        fig.circle(
            x(moment),
            y(value),
            4,
            status_color(state),
            0.75,
            f"trial {trial.trial_id} ({state}): last {data.metric} = {fmt(value)} "
            f"at iteration {int(reports.iteration[r])}, {moment:.1f} s",
        )
        fig.add("</g>")
    total = sample.number(len(last))
    shown = f"dots: best {len(top)} of {total} trials and {len(others)} of the rest"
    if len(steps) < len(rows):
        shown += f"; {len(steps)} of {sample.number(len(rows))} steps"
    sample.mark(fig, shown)
    present = sorted({status.get(t.trial_id, "") for t in [*top, *others]} & set(STATUS_COLORS))
    fig.legend([("best so far", BEST_COLOR)] + [(f"last report, {s}", status_color(s)) for s in present])
    final = (float(reports.time_s[rows[-1]]), float(reports.value[rows[-1]]), reports.ids[reports.trial[rows[-1]]])
    caption = (
        f"The black step line is the best {data.metric} reported by any trial that did not fail up to that moment, "
        f"computed from all {sample.number(int(scored.sum()))} reports ({sample.number(len(leads))} changes of leading "
        f"trial, black dots; final {fmt(final[1])} by trial {final[2]} at {final[0]:.1f} s)"
        + (f"; {len(steps)} of its {sample.number(len(rows))} steps and {len(leaders)} of the changes are drawn, evenly spaced"
           if len(steps) < len(rows) or len(leaders) < len(leads) else "")
        + f". A sample of the trials' last reports, coloured by status: the {len(top)} best of {total} trials and "
        f"{len(others)} of the rest, evenly spaced in rank."
    )
    return Chart(ChartKind.BEST_SO_FAR, TITLE, fig.render(TITLE), caption, fig.width, fig.height, sample=shown)


def _step(reports: Reports, row: int) -> tuple[float, float, str, int]:
    """Report ``row`` as a step of the running best: time, value, trial, iteration."""
    return float(reports.time_s[row]), float(reports.value[row]), reports.ids[reports.trial[row]], int(reports.iteration[row])


def _last_rows(trial: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Of ``rows`` (in report order), the last one of each trial."""
    import numpy as np

    reversed_rows = rows[::-1]
    _, first = np.unique(trial[reversed_rows], return_index=True)
    return np.sort(reversed_rows[first])


def _draw_best(
    fig: Figure, x: Scale, y: Scale, steps: list[tuple[float, float, str, int]], end: float, metric: str
) -> None:
    """The best value so far as a step line from the first step to ``end``."""
    points: list[tuple[float, float]] = []
    for i, (t, best, _, _) in enumerate(steps):
        if i:
            points.append((x(t), points[-1][1]))
        points.append((x(t), y(best)))
    points.append((x(end), y(steps[-1][1])))
    fig.polyline(points, BEST_COLOR, 2.2, tip=f"best {metric} so far", css="series best")
