"""Where the scheduler stopped trials: for ASHA, how many trials stopped at each rung.

ASHA (one bracket, as raytuner configures it) compares trials at the rungs
``grace_period * reduction_factor**k`` below ``max_t``; a trial below the cut at a rung is
stopped there, so its last ``training_iteration`` is (at or just past) that rung. The rungs
are read from the experiment's ``spec.yaml``; without ASHA settings the chart shows where
stopped trials ended, by iteration.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from raytuner.results.report.data import ExperimentData
from raytuner.results.report.section import Chart, ChartKind, Omitted, Section
from raytuner.results.report.svg import MUTED, Figure, fmt, status_color

TITLE = "Where early stopping stopped trials"


def asha_rungs(scheduler: dict[str, Any]) -> list[float]:
    """The rung milestones of an ASHA scheduler spec (empty for any other scheduler)."""
    if scheduler.get("type") != "asha":
        return []
    try:
        grace = float(scheduler.get("grace_period", 1))
        max_t = float(scheduler.get("max_t", 100))
        factor = float(scheduler.get("reduction_factor", 4))
    except (TypeError, ValueError):
        return []
    if grace <= 0 or factor <= 1 or max_t < grace:
        return []
    # Ray's ASHA: int(log(max_t / grace) / log(factor) + 1) rungs, each grace * factor**k.
    count = int(math.log(max_t / grace) / math.log(factor) + 1 + 1e-9)
    return [grace * factor**k for k in range(count) if grace * factor**k < max_t]


def chart(data: ExperimentData) -> Section:
    scheduler = data.scheduler
    kind = str(scheduler.get("type", "fifo"))
    stopped = [t for t in data.trials if t.status == "stopped"]
    if not stopped:
        reason = (
            f"No trial was stopped early (scheduler: {kind})."
            if kind != "fifo"
            else "The FIFO scheduler never stops trials early, so there is nothing to show."
        )
        return Omitted(ChartKind.EARLY_STOPPING, TITLE, reason)
    time_attr = str(scheduler.get("time_attr", "training_iteration"))
    rungs = asha_rungs(scheduler) if time_attr == "training_iteration" else []
    max_t = scheduler.get("max_t")
    if rungs:
        groups = [(f"rung {fmt(r)}", r) for r in rungs]
        labels = {t.trial_id: _rung_of(t.iterations, rungs) for t in data.trials}
    else:
        ends = sorted({t.iterations for t in stopped})
        groups = [(f"iter {n}", float(n)) for n in ends]
        labels = {t.trial_id: float(t.iterations) for t in data.trials}
    stopped_at = Counter(labels[t.trial_id] for t in stopped)
    reached = {value: sum(1 for t in data.trials if t.iterations >= value) for _, value in groups}
    # Trials that went past each group (reached, not stopped there), by outcome.
    fig = Figure(ChartKind.EARLY_STOPPING.value, 1000, 340, top=30, left=70, bottom=60)
    top = max(reached.values()) or 1
    band = (fig.right - fig.left) / len(groups)
    bar = min(70.0, band * 0.6)

    def py(count: float) -> float:
        return fig.bottom - count / top * (fig.bottom - fig.top)

    for tick in _int_ticks(top):
        fig.line(fig.left, py(tick), fig.right, py(tick), "#e6e6e6")
        fig.text(fig.left - 6, py(tick) + 4, str(tick), anchor="end", size=11, color=MUTED)
    fig.line(fig.left, fig.bottom, fig.right, fig.bottom, MUTED)
    for i, (label, value) in enumerate(groups):
        cx = fig.left + band * (i + 0.5)
        n_stop = stopped_at.get(value, 0)
        n_on = reached[value] - n_stop
        fig.rect(
            cx - bar / 2,
            py(reached[value]),
            bar,
            py(n_on) - py(reached[value]),
            status_color("stopped"),
            f"{label}: {n_stop} trial(s) stopped here",
            css="bar stopped",
        )
        fig.rect(
            cx - bar / 2,
            py(n_on),
            bar,
            fig.bottom - py(n_on),
            status_color("completed"),
            f"{label}: {n_on} of {reached[value]} trial(s) went on",
            css="bar continued",
        )
        fig.text(cx, py(reached[value]) - 5, f"{n_stop} / {reached[value]}", anchor="middle", size=11)
        fig.text(cx, fig.bottom + 16, label, anchor="middle", size=12)
    fig.text(
        (fig.left + fig.right) / 2,
        fig.height - 14,
        "rung (training_iteration where ASHA compares trials)"
        if rungs
        else "last training_iteration of stopped trials",
        anchor="middle",
    )
    fig.text(16, (fig.top + fig.bottom) / 2, "trials reaching it", anchor="middle", rotate=-90)
    fig.legend([("stopped here", status_color("stopped")), ("went on", status_color("completed"))])
    settings = ", ".join(
        f"{key}={scheduler[key]:g}" if isinstance(scheduler[key], (int, float)) else f"{key}={scheduler[key]}"
        for key in ("max_t", "grace_period", "reduction_factor", "brackets")
        if key in scheduler
    )
    finished = sum(1 for t in data.trials if max_t is not None and t.iterations >= float(max_t))
    caption = (
        f"Scheduler {kind}" + (f" ({settings})" if settings else "") + f": {len(stopped)} of {len(data.trials)} "
        "trials were stopped early. Each bar is the number of trials that reached a "
        + ("rung; orange is the part stopped there (labels: stopped / reached)" if rungs else "point")
        + (f"; {finished} trial(s) ran to max_t." if max_t is not None else ".")
    )
    if time_attr != "training_iteration":
        caption += f" The scheduler measures progress in {time_attr}, so rungs are not drawn in iterations."
    return Chart(ChartKind.EARLY_STOPPING, TITLE, fig.render(TITLE), caption, fig.width, fig.height)


def _rung_of(iterations: int, rungs: list[float]) -> float:
    """The last rung a trial with ``iterations`` reports reached (the first rung if none)."""
    below = [r for r in rungs if r <= iterations]
    return below[-1] if below else rungs[0]


def _int_ticks(top: int) -> list[int]:
    step = max(1, math.ceil(top / 5))
    return list(range(0, top + 1, step))
