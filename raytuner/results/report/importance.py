"""Parameter importance, with the method named on the page.

Two measures, both honest about what they are:

- Rank correlation, always: Spearman's rho between a numeric parameter and the trials' best
  metric (signed: positive means larger values give larger metric), and for a categorical
  parameter the correlation ratio eta of the metric's ranks by category (0 to 1, the
  rank-based analogue of |rho|). These see one parameter at a time and only monotone effects.
- When scikit-learn is installed (the ``torch`` extra) and there are at least
  ``MIN_TRIALS_FOREST`` scored trials: a random forest fitted to predict the metric's rank from
  all parameters, and the permutation importance of each parameter (how much the forest's
  R^2 drops when that parameter's column is shuffled), normalised to sum to 1. It sees
  interactions and non-monotone effects, but with few trials it is noisy: treat it as a hint.
  Past ``FOREST_ROWS`` scored trials each tree is fitted on a bootstrap sample of that many of
  them and the shuffling is scored on that many, evenly spaced (the caption says so): the
  permutations' predictions were most of a 10,000-trial report's time.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from html import escape
from typing import Any

from raytuner.results.report.data import ExperimentData, Param
from raytuner.results.report.section import Chart, ChartKind, Omitted, Section
from raytuner.results.report.svg import MUTED, Figure, fmt, nice_ticks

TITLE = "Parameter importance"
MIN_TRIALS = 3
MIN_TRIALS_FOREST = 8
FOREST_ROWS = 2000


@dataclass(frozen=True)
class Importance:
    param: str
    numeric: bool
    rank_correlation: float | None
    forest: float | None


def importances(data: ExperimentData) -> tuple[list[Importance], str]:
    """Importance of every varying parameter, and the name of the method used for the bars."""
    import numpy as np

    trials = [t for t in data.trials if t.best is not None]
    params = [p for p in data.params if len({json.dumps(t.config.get(p.name)) for t in trials}) > 1]
    y = np.array([t.best for t in trials], dtype=float)
    ranks = _ranks(y)
    columns = {p.name: _encode(p, [t.config.get(p.name) for t in trials]) for p in params}
    correlations = {}
    for p in params:
        values = [t.config.get(p.name) for t in trials]
        if p.numeric:
            mask = np.array([v is not None for v in values])
            x = np.array([float(v) if v is not None else 0.0 for v in values])
            correlations[p.name] = _spearman(x[mask], y[mask]) if mask.sum() >= MIN_TRIALS else None
        else:
            correlations[p.name] = _eta(ranks, [json.dumps(v) for v in values])
    forest = _forest(np.column_stack([columns[p.name] for p in params]), ranks) if params else None
    method = (
        "random-forest permutation importance (scikit-learn)"
        if forest is not None
        else "|Spearman rho| for numeric parameters, rank correlation ratio eta for categorical ones"
    )
    out = [
        Importance(p.name, p.numeric, correlations[p.name], None if forest is None else float(forest[i]))
        for i, p in enumerate(params)
    ]
    return out, method


def chart(data: ExperimentData) -> Section:
    scored = [t for t in data.trials if t.best is not None]
    if len(scored) < MIN_TRIALS:
        return Omitted(
            ChartKind.IMPORTANCE,
            TITLE,
            f"Needs at least {MIN_TRIALS} trials that reported {data.metric}; this experiment has {len(scored)}.",
        )
    rows, method = importances(data)
    if not rows:
        return Omitted(ChartKind.IMPORTANCE, TITLE, "No parameter varies across the scored trials.")
    forest = rows[0].forest is not None

    def bar(row: Importance) -> float:
        if forest:
            return max(row.forest or 0.0, 0.0)
        return abs(row.rank_correlation or 0.0)

    rows.sort(key=bar, reverse=True)
    height = max(150, 60 + 28 * len(rows))  # also: headless Chromium paints nothing in very short windows
    fig = Figure(ChartKind.IMPORTANCE.value, 1000, height, left=200, right=120, top=30, bottom=30)
    top = 1.0 if not forest else max(max(bar(r) for r in rows), 1e-9)
    ticks = nice_ticks(0.0, top, 4)
    top = max(top, ticks[-1])
    width = fig.right - fig.left
    for tick in ticks:
        px = fig.left + tick / top * width
        fig.line(px, fig.top, px, fig.bottom, "#e6e6e6")
        fig.text(px, fig.bottom + 16, fmt(tick), anchor="middle", size=11, color=MUTED)
    for i, row in enumerate(rows):
        y = fig.top + 28 * i + 4
        fig.text(fig.left - 8, y + 14, row.param if len(row.param) <= 28 else "…" + row.param[-27:], anchor="end")
        fig.rect(fig.left, y, bar(row) / top * width, 20, "#3b528b", f"{row.param}: {fmt(bar(row))}", css="bar")
        fig.text(fig.left + bar(row) / top * width + 6, y + 14, fmt(round(bar(row), 3)), size=11)
    caption = (
        f"Bars: {method}, computed from {len(scored)} trials with a best {data.metric}. "
        + (
            "A random forest predicts the rank of the metric from all parameters; a bar is the drop in its R^2 when "
            "that parameter is shuffled (normalised to sum to 1). "
            if forest
            else "Without scikit-learn (the torch extra) or with fewer than "
            f"{MIN_TRIALS_FOREST} scored trials, only rank correlations are shown. "
        )
        + "The table gives the signed rank correlations too; they only see one parameter at a time "
        "and monotone effects."
    )
    if forest and len(scored) > FOREST_ROWS:
        caption += (
            f" With {len(scored):,} trials, each tree is fitted on a bootstrap sample of {FOREST_ROWS:,} of them, and "
            f"the shuffling is scored on {FOREST_ROWS:,} trials evenly spaced in the table."
        )
    stopped = sum(1 for t in scored if t.status == "stopped")
    if stopped:
        caption += (
            f" {stopped} of these trials were stopped early: their best comes from fewer iterations, so a parameter "
            "that changes how long trials run (or how fast they learn) looks more important than it would "
            "at equal budget."
        )
    table = _table(rows, data.metric)
    return Chart(ChartKind.IMPORTANCE, TITLE, fig.render(TITLE), caption, fig.width, fig.height, table)


def _table(rows: list[Importance], metric: str) -> str:
    body = "".join(
        f"<tr><td>{escape(r.param)}</td><td>{'numeric' if r.numeric else 'categorical'}</td>"
        f"<td>{_correlation(r)}</td>"
        f"<td>{'' if r.forest is None else f'{r.forest:.3f}'}</td></tr>"
        for r in rows
    )
    return (
        f"<table class='importance'><thead><tr><th>parameter</th><th>kind</th><th>rank correlation with "
        f"{escape(metric)}</th><th>forest importance</th></tr></thead><tbody>{body}</tbody></table>"
    )


def _correlation(row: Importance) -> str:
    if row.rank_correlation is None:
        return ""
    return f"{'rho' if row.numeric else 'eta'} {row.rank_correlation:+.3f}"


def _encode(param: Param, values: list[Any]) -> Any:
    """A numeric column for the forest: numbers as they are, categories as codes, n/a as its own code."""
    import numpy as np

    if param.numeric:
        present = [float(v) for v in values if v is not None]
        fill = (min(present) - 1.0 - abs(min(present))) if present else 0.0
        return np.array([float(v) if v is not None else fill for v in values])
    codes = {key: i for i, key in enumerate(sorted({json.dumps(v) for v in values}))}
    return np.array([codes[json.dumps(v)] for v in values], dtype=float)


def _ranks(values: Any) -> Any:
    """Average ranks (ties share the mean of their positions), as scipy.stats.rankdata."""
    import numpy as np

    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=float)
    ordered = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and ordered[j + 1] == ordered[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _spearman(x: Any, y: Any) -> float | None:
    import numpy as np

    rx, ry = _ranks(x), _ranks(y)
    if np.std(rx) == 0 or np.std(ry) == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


def _eta(ranks: Any, groups: list[str]) -> float | None:
    """Correlation ratio of ``ranks`` by ``groups``: sqrt(between-group / total sum of squares)."""
    import numpy as np

    total = float(np.sum((ranks - ranks.mean()) ** 2))
    if total == 0 or len(set(groups)) < 2:
        return None
    between = 0.0
    for group in set(groups):
        members = ranks[[g == group for g in groups]]
        between += len(members) * float((members.mean() - ranks.mean()) ** 2)
    return math.sqrt(between / total)


def _forest(x: Any, y: Any) -> Any | None:
    """Permutation importances of a random forest, normalised to sum to 1; None without scikit-learn."""
    if len(y) < MIN_TRIALS_FOREST:
        return None
    try:
        from sklearn.ensemble import RandomForestRegressor
        from sklearn.inspection import permutation_importance
    except ImportError:
        return None
    import numpy as np

    sampled = len(y) > FOREST_ROWS
    model = RandomForestRegressor(
        n_estimators=100, min_samples_leaf=2, random_state=0, n_jobs=1, max_samples=FOREST_ROWS if sampled else None
    )
    model.fit(x, y)
    rows = np.round(np.linspace(0, len(y) - 1, FOREST_ROWS)).astype(np.int64) if sampled else slice(None)
    result = permutation_importance(model, x[rows], y[rows], n_repeats=5, random_state=0, n_jobs=1)
    raw = np.clip(result.importances_mean, 0.0, None)
    total = float(raw.sum())
    return raw / total if total > 0 else raw
