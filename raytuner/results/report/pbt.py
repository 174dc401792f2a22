"""The PBT family tree: one lane per trial over training iterations, an arrow per exploit.

Drawn from ``pbt_decisions.parquet`` (columns documented on
:class:`raytuner.results.lineage.Decision`). At each decision the trial took the
weights of ``source_trial_id`` and a perturbed copy of its configuration; the arrow goes
from the source's lane to the trial's lane at that step.
"""

from __future__ import annotations

from collections import defaultdict
from html import escape
from typing import Any

from raytuner.results.report.data import PBT_DECISIONS, ExperimentData
from raytuner.results.report.section import Chart, ChartKind, Omitted, Section
from raytuner.results.report.svg import BEST_COLOR, MUTED, Figure, Scale, fmt, status_color
from raytuner.spec.models import SchedulerType

TITLE = "PBT family tree"
MAX_LANES = 64
SCHEDULERS = (SchedulerType.PBT.value, SchedulerType.PB2.value)  # runs that have a family tree


def chart(data: ExperimentData) -> Section:
    if data.pbt is None:
        return Omitted(
            ChartKind.PBT_LINEAGE,
            TITLE,
            f"No {PBT_DECISIONS} in the experiment folder: it was recorded before raytuner wrote PBT decisions.",
        )
    if not data.pbt:
        return Omitted(ChartKind.PBT_LINEAGE, TITLE, f"{PBT_DECISIONS} is empty: PBT made no exploit decision.")
    spans: dict[str, list[int]] = defaultdict(list)
    for report in data.reports:
        spans[report.trial_id].append(report.iteration)
    for decision in data.pbt:
        spans[decision.trial_id].append(decision.step)
        spans[decision.source_trial_id].append(decision.step)
    best = data.best_trial
    # Lanes ordered by final score, best on top; trials in decisions but not the table go last.
    score = {t.trial_id: t.best for t in data.trials}
    lanes = sorted(spans, key=lambda tid: (score.get(tid) is None, -data.sign * (score.get(tid) or 0.0), tid))
    dropped = lanes[MAX_LANES:]
    lanes = lanes[:MAX_LANES]
    row = 22
    fig = Figure(ChartKind.PBT_LINEAGE.value, 1000, 80 + row * len(lanes), left=110, right=30, top=30, bottom=45)
    steps = [s for values in spans.values() for s in values]
    x = Scale.fit([min(steps + [0]), max(steps)], fig.left, fig.right, log=False, pad=0.02)
    y = {tid: fig.top + row * (i + 0.5) for i, tid in enumerate(lanes)}
    for value in x.ticks():
        fig.line(x(value), fig.top, x(value), fig.bottom, "#e6e6e6")
        fig.text(x(value), fig.bottom + 16, fmt(value), anchor="middle", size=11, color=MUTED)
    fig.text((fig.left + fig.right) / 2, fig.height - 10, "training_iteration", anchor="middle")
    status = data.status_of()
    for tid in lanes:
        color = BEST_COLOR if best is not None and tid == best.trial_id else status_color(status.get(tid, ""))
        lo, hi = min(spans[tid]), max(spans[tid])
        fig.text(
            fig.left - 8,
            y[tid] + 4,
            tid,
            anchor="end",
            size=11,
            weight="bold" if best is not None and tid == best.trial_id else "normal",
        )
        fig.polyline(
            [(x(lo), y[tid]), (x(hi), y[tid])],
            color,
            3,
            0.85,
            tip=f"trial {tid} ({status.get(tid, '?')}), best {data.metric} = {_show(score.get(tid))}",
            css="series lane",
        )
    fig.add(
        '<defs><marker id="pbt-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>'
    )
    drawn = 0
    for decision in sorted(data.pbt, key=lambda d: d.step):
        if decision.trial_id not in y or decision.source_trial_id not in y:
            continue
        px = x(decision.step)
        y0, y1 = y[decision.source_trial_id], y[decision.trial_id]
        tip = f"step {decision.step}: {decision.trial_id} cloned {decision.source_trial_id}; " + _changes(
            decision.old_config, decision.new_config
        )
        fig.add(
            f'<path class="exploit" d="M{px - 10:.1f},{y0:.1f} C{px:.1f},{y0:.1f} {px - 10:.1f},{y1:.1f} '
            f'{px:.1f},{y1:.1f}" fill="none" stroke="#555" stroke-width="1.4" marker-end="url(#pbt-arrow)">'
            f"<title>{escape(tip)}</title></path>"
        )
        fig.circle(px, y1, 3.5, "#555", 1.0, tip, css="dot exploit")
        drawn += 1
    caption = (
        f"Each lane is a trial (best {data.metric} on top, the best trial in black). Each of the {drawn} arrows is an "
        "exploit: at that iteration the trial at the arrow's head took the weights and a perturbed configuration of "
        "the trial at its tail. Hover an arrow for the configuration change."
    )
    if dropped:
        caption += f" {len(dropped)} lower-ranked trial(s) are not drawn."
    return Chart(ChartKind.PBT_LINEAGE, TITLE, fig.render(TITLE), caption, fig.width, fig.height)


def _changes(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = sorted(set(old) | set(new))
    changed = [f"{k}: {_show(old.get(k))} -> {_show(new.get(k))}" for k in keys if old.get(k) != new.get(k)]
    return "; ".join(changed) if changed else "configuration unchanged"


def _show(value: Any) -> str:
    if value is None:
        return "n/a"
    return fmt(value) if isinstance(value, float) else str(value)
