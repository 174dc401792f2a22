"""Best so far over time: the running best of the metric across all trials, by wall time."""

from __future__ import annotations

from raytuner.results.records import rankable
from raytuner.results.report.data import ExperimentData
from raytuner.results.report.section import Chart, ChartKind, Omitted, Section
from raytuner.results.report.svg import BEST_COLOR, STATUS_COLORS, Figure, Scale, fmt, status_color

TITLE = "Best so far over time"


def chart(data: ExperimentData) -> Section:
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
    points: list[tuple[float, float]] = []
    for i, (t, best, _, _) in enumerate(steps):
        if i:
            points.append((x(t), points[-1][1]))
        points.append((x(t), y(best)))
    points.append((x(end), y(steps[-1][1])))
    fig.polyline(points, BEST_COLOR, 2.2, tip=f"best {data.metric} so far", css="series best")
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
