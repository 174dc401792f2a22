"""What a chart of a large experiment draws: every trial up to a size, a labelled sample past it.

Up to :data:`MAX_DRAWN` trials and :data:`MAX_REPORTS` reports every chart draws every trial,
one by one. Past either, a chart still computes on every report (the running best, each
iteration's quantiles, the axes) but draws the best :data:`TOP` trials, a uniform sample of
:data:`OTHERS` of the rest or an aggregate of all of them, and lines of at most
:data:`MAX_POINTS` points; its caption and :attr:`Chart.sample` say what it shows, so nothing
is hidden silently. Why these sizes: docs/performance.md (dashboard).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import numpy as np

    from raytuner.results.report.data import ExperimentData, Trial
    from raytuner.results.report.svg import Figure

MAX_DRAWN = 200
MAX_REPORTS = 100_000
TOP = 50
OTHERS = 250
MAX_POINTS = 400

T = TypeVar("T")


def is_large(data: ExperimentData, trials: int | None = None) -> bool:
    """Whether ``data`` (with ``trials`` to draw, default all of them) is past the sizes drawn whole."""
    return (len(data.trials) if trials is None else trials) > MAX_DRAWN or len(data.reports) > MAX_REPORTS


def ranked(data: ExperimentData, trials: Sequence[Trial] | None = None) -> list[Trial]:
    """``trials`` (default all), best first by their best value; those without one last, in table order."""
    pool = data.trials if trials is None else trials
    return sorted(pool, key=lambda t: (t.best is None, -data.sign * (t.best or 0.0)))


def spread(items: Sequence[T], count: int) -> list[T]:
    """``count`` of ``items`` evenly spaced from first to last (a uniform sample that is the same
    at every drawing), or all of them when there are no more."""
    if len(items) <= count:
        return list(items)
    if count <= 1:
        return list(items[:count])
    step = (len(items) - 1) / (count - 1)
    return [items[round(i * step)] for i in range(count)]


def best_and_spread(items: Sequence[T], top: int = TOP, others: int = OTHERS) -> tuple[list[T], list[T]]:
    """The first ``top`` of ``items`` (ranked best first) and a uniform sample of ``others`` of the rest."""
    return list(items[:top]), spread(items[top:], others)


def thin(count: int, cap: int = MAX_POINTS) -> np.ndarray:
    """Indices of at most ``cap`` of ``count`` points, evenly spaced, first and last kept."""
    import numpy as np

    if count <= cap:
        return np.arange(count)
    return np.unique(np.round(np.linspace(0, count - 1, cap)).astype(np.int64))


def number(n: int) -> str:
    """A count as a reader reads it: 10,000."""
    return f"{n:,}"


def mark(fig: Figure, text: str, y: float | None = None) -> None:
    """Say on the chart itself that it shows a sample (left, above the plot unless ``y`` is given)."""
    from raytuner.results.report.svg import MUTED

    fig.text(fig.left, fig.top - 6 if y is None else y, text, size=11, color=MUTED, weight="bold")
