"""Parallel coordinates: one vertical axis per parameter and one for the metric, a line per trial.

Numeric parameters get the scale the spec's space draws them on: log10 for ``loguniform``,
``qloguniform`` and ``lograndint``, linear for the other distributions. Where the space does
not say (a choice of numbers, no ``spec.yaml``), log10 when every value is positive and they
span 100x or more. Strings and booleans get one slot per value.
A parameter a trial's branch does not have sits in an ``n/a`` slot under its axis.
A large experiment's axes span every trial, but its lines are the best trials' and a uniform
sample of the rest (:mod:`.sample`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from raytuner.results.report import sample
from raytuner.results.report.data import ExperimentData, Param
from raytuner.results.report.section import Chart, ChartKind, Omitted, Section
from raytuner.results.report.svg import BEST_COLOR, INK, MUTED, Figure, Scale, fmt, ramp

TITLE = "Parallel coordinates"
MAX_AXES = 14


def chart(data: ExperimentData) -> Section:
    params = [p for p in data.params if len({_key(t.config.get(p.name)) for t in data.trials}) > 1]
    if not params:
        reason = (
            "The space has no parameters."
            if not data.params
            else "Every trial has the same configuration, so there is nothing to compare."
        )
        return Omitted(ChartKind.PARALLEL_COORDINATES, TITLE, reason)
    dropped = params[MAX_AXES:]
    params = params[:MAX_AXES]
    fig = Figure(ChartKind.PARALLEL_COORDINATES.value, 1000, 440, left=60, right=90, top=40, bottom=70)
    names = [p.name for p in params] + [f"{data.metric} (best)"]
    step = (fig.right - fig.left) / max(len(names) - 1, 1)
    xs = [fig.left + i * step for i in range(len(names))]
    na_y = fig.bottom + 22
    axes: list[Callable[[Any], float]] = []
    guides = fig.layer()  # axes and labels go on top of the lines
    for i, (param, ax) in enumerate(zip(params, xs, strict=False)):
        axis, log = _axis(guides, param, [t.config.get(param.name) for t in data.trials], ax, na_y)
        axes.append(axis)
        if log:
            names[i] = f"{param.name} (log)"
    scored = [t.best for t in data.trials if t.best is not None]
    metric_scale = Scale.fit(scored or [0.0, 1.0], fig.bottom, fig.top)
    _ticks(guides, metric_scale, xs[-1])
    if len(scored) < len(data.trials):
        guides.text(xs[-1], na_y + 4, "n/a", anchor="middle", size=10, color=MUTED)
    if metric_scale.log:
        names[-1] = f"{data.metric} (best, log)"
    for ax, name in zip(xs, names, strict=True):
        guides.line(ax, fig.top, ax, fig.bottom, INK)
        guides.text(ax, fig.top - 12, _short(name), anchor="middle", size=12, weight="bold")
    lo, hi = (min(scored), max(scored)) if scored else (0.0, 1.0)
    best = data.best_trial

    def badness(value: float) -> float:
        if hi == lo:
            return 0.0
        good = hi if data.mode == "max" else lo
        return abs(value - good) / (hi - lo)

    shown = ""
    drawn = list(data.trials)
    if sample.is_large(data):
        top, others = sample.best_and_spread(sample.ranked(data))
        drawn = [*top, *others]
        shown = f"lines: best {len(top)} of {sample.number(len(data.trials))} trials and {len(others)} of the rest"
        sample.mark(guides, shown, y=fig.height - 12)  # the axes' names take the top, the legend the right
    ordered = sorted(drawn, key=lambda t: (t.best is not None, -badness(t.best) if t.best is not None else 0))
    for trial in ordered:
        points = [(ax, axis(trial.config.get(p.name))) for ax, axis, p in zip(xs, axes, params, strict=False)]
        value = trial.best
        points.append((xs[-1], metric_scale(value) if value is not None else na_y))
        is_best = best is not None and trial.trial_id == best.trial_id
        color = BEST_COLOR if is_best else (ramp(badness(value)) if value is not None else "#bbbbbb")
        tip = (
            f"trial {trial.trial_id} ({trial.status}): {data.metric} = {fmt(value) if value is not None else 'n/a'}; "
            + (", ".join(f"{p.name}={_label(trial.config.get(p.name))}" for p in params))
        )
        fig.polyline(
            points,
            color,
            3.0 if is_best else 1.4,
            1.0 if is_best else 0.75,
            tip=tip,
            dash=None if value is not None else "3 3",
            css="series best" if is_best else "series",
        )
    fig.stack(guides)
    keys = [("best trial", BEST_COLOR), ("better", ramp(0.0)), ("worse", ramp(1.0))]
    fig.legend(keys + ([("no metric", "#bbbbbb")] if len(scored) < len(data.trials) else []), y=fig.height - 12)
    caption = (
        f"Each line is a trial, coloured by its best {data.metric} (dark is better, {data.mode}); the best trial is "
        "black, trials that never reported the metric are grey and dashed. Numeric axes are linear unless marked log."
    )
    if dropped:
        caption += f" {len(dropped)} more parameter(s) not drawn: {', '.join(p.name for p in dropped)}."
    if shown:
        caption += (
            f" A sample: the axes span all {sample.number(len(data.trials))} trials, the lines are the "
            f"{len(top)} best and {len(others)} of the rest, evenly spaced in rank."
        )
    return Chart(ChartKind.PARALLEL_COORDINATES, TITLE, fig.render(TITLE), caption, fig.width, fig.height, sample=shown)


def _axis(fig: Figure, param: Param, values: list[Any], ax: float, na_y: float) -> tuple[Callable[[Any], float], bool]:
    """Draw the ticks of one parameter axis; return the map from a value to its y, and whether it is log."""
    present = [v for v in values if v is not None]
    if any(v is None for v in values):
        fig.text(ax, na_y + 4, "n/a", anchor="middle", size=10, color=MUTED)
    if param.numeric and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        scale = Scale.fit([float(v) for v in present], fig.bottom, fig.top, log=param.log, pad=0.03)
        _ticks(fig, scale, ax)
        return (lambda v: scale(float(v)) if v is not None else na_y), scale.log
    levels = sorted({_key(v) for v in present})
    gap = (fig.bottom - fig.top) / len(levels)
    slots = {level: fig.bottom - gap * (i + 0.5) for i, level in enumerate(levels)}
    for level, y in slots.items():
        fig.line(ax - 4, y, ax + 4, y, INK)
        fig.text(ax + 7, y + 4, _short(level, 14), size=11, color=INK, halo=True)
    return (lambda v: slots[_key(v)] if v is not None else na_y), False


def _ticks(fig: Figure, scale: Scale, ax: float) -> None:
    ticks = scale.ticks(4)
    for value in ticks:
        y = scale(value)
        fig.line(ax - 4, y, ax, y, INK)
        fig.text(ax - 7, y + 4, fmt(value), anchor="end", size=10, color=INK, halo=True)


def _key(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _label(value: Any) -> str:
    if isinstance(value, float):
        return fmt(value)
    return "n/a" if value is None else str(value)


def _short(text: str, limit: int = 22) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]
