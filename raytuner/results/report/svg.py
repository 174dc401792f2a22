"""A small SVG vocabulary for the report's charts: scales, nice ticks, axes, marks.

Charts are drawn in Python as inline SVG (no JavaScript, nothing fetched at view time).
Every mark can carry a ``<title>``, which browsers show as a tooltip on hover.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif"
INK = "#222"
GRID = "#e6e6e6"
MUTED = "#888"

# Colours by trial status (the same everywhere in the report).
STATUS_COLORS = {
    "completed": "#1f77b4",
    "stopped": "#ff7f0e",
    "error": "#d62728",
    "running": "#2ca02c",
    "paused": "#9467bd",
    "pending": "#7f7f7f",
}
BEST_COLOR = "#111111"

# A perceptually ordered ramp (viridis stops): dark is good, light is bad.
_RAMP = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"]


def status_color(status: str) -> str:
    return STATUS_COLORS.get(status, "#7f7f7f")


def ramp(fraction: float) -> str:
    """A colour on the ramp for ``fraction`` in [0, 1] (0 dark, 1 light)."""
    f = min(1.0, max(0.0, fraction)) * (len(_RAMP) - 1)
    i = min(int(f), len(_RAMP) - 2)
    a, b = _hex(_RAMP[i]), _hex(_RAMP[i + 1])
    t = f - i
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(a, b, strict=True))


def _hex(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def fmt(value: float) -> str:
    """A number short enough for a tick label or a tooltip."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e5 or magnitude < 1e-3:
        return f"{value:.2e}".replace("e+0", "e").replace("e-0", "e-").replace("e+", "e")
    return f"{value:.4g}"


@dataclass(frozen=True)
class Scale:
    """A linear or log10 map from data values ``[lo, hi]`` to pixels ``[start, end]``."""

    lo: float
    hi: float
    start: float
    end: float
    log: bool = False

    @classmethod
    def fit(
        cls, values: Iterable[float], start: float, end: float, log: bool | None = None, pad: float = 0.04
    ) -> Scale:
        """A scale covering ``values``; ``log=None`` picks log10 for positive data spanning 100x or more."""
        finite = [v for v in values if math.isfinite(v)]
        if not finite:
            return cls(0.0, 1.0, start, end)
        lo, hi = min(finite), max(finite)
        if log is None:
            log = lo > 0 and hi / lo >= 100
        if log and lo <= 0:
            log = False
        if log:
            a, b = math.log10(lo), math.log10(hi)
            if a == b:
                a, b = a - 0.5, b + 0.5
            margin = (b - a) * pad
            return cls(10 ** (a - margin), 10 ** (b + margin), start, end, True)
        if lo == hi:
            delta = abs(lo) * 0.1 or 1.0
            lo, hi = lo - delta, hi + delta
        margin = (hi - lo) * pad
        return cls(lo - margin, hi + margin, start, end)

    def __call__(self, value: float) -> float:
        if self.log:
            a, b, v = math.log10(self.lo), math.log10(self.hi), math.log10(max(value, self.lo * 1e-12))
        else:
            a, b, v = self.lo, self.hi, value
        return self.start + (v - a) / (b - a) * (self.end - self.start)

    def ticks(self, count: int = 5) -> list[float]:
        if self.log:
            return _log_ticks(self.lo, self.hi)
        return nice_ticks(self.lo, self.hi, count)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 5 times a power of ten) inside ``[lo, hi]``."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step) * step
    ticks = []
    value = first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _log_ticks(lo: float, hi: float) -> list[float]:
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    decades = [10.0**k for k in range(a, b + 1) if lo <= 10.0**k <= hi]
    if len(decades) >= 3:
        stride = max(1, len(decades) // 6)
        return decades[::stride]
    ticks = [m * 10.0**k for k in range(a, b + 1) for m in (1, 2, 5) if lo <= m * 10.0**k <= hi]
    return ticks or [lo, hi]


def title(text: str | None) -> str:
    return f"<title>{escape(text)}</title>" if text else ""


class Figure:
    """One SVG chart: a plot area inside margins, and marks added in drawing order."""

    def __init__(
        self, key: str, width: int, height: int, *, left: int = 70, right: int = 20, top: int = 20, bottom: int = 50
    ) -> None:
        self.key = key
        self.width = width
        self.height = height
        self.left, self.right, self.top, self.bottom = left, width - right, top, height - bottom
        self._parts: list[str] = [f'<rect width="{width}" height="{height}" fill="#ffffff"/>']

    def add(self, markup: str) -> None:
        self._parts.append(markup)

    def layer(self) -> Figure:
        """An empty figure of the same geometry, to draw into now and stack on top later."""
        other = Figure(self.key, self.width, self.height)
        other.left, other.right, other.top, other.bottom = self.left, self.right, self.top, self.bottom
        other._parts = []
        return other

    def stack(self, layer: Figure) -> None:
        """Put everything drawn on ``layer`` above what is drawn here so far."""
        self._parts.extend(layer._parts)

    # ------------------------------------------------------------------ marks

    def line(
        self, x1: float, y1: float, x2: float, y2: float, color: str = INK, width: float = 1, dash: str | None = None
    ) -> None:
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        self.add(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
            f'stroke="{color}" stroke-width="{width}"{dashed}/>'
        )

    def polyline(
        self,
        points: Sequence[tuple[float, float]],
        color: str,
        width: float = 1.5,
        opacity: float = 1.0,
        tip: str | None = None,
        dash: str | None = None,
        css: str = "series",
    ) -> None:
        if not points:
            return
        if len(points) == 1:
            self.circle(points[0][0], points[0][1], 2.5, color, opacity, tip, css=css)
            return
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        self.add(
            f'<polyline class="{css}" points="{coords}" fill="none" stroke="{color}" stroke-width="{width}" '
            f'stroke-opacity="{opacity:.2f}" stroke-linejoin="round"{dashed}>{title(tip)}</polyline>'
        )

    def polygon(self, points: Sequence[tuple[float, float]], color: str, opacity: float, tip: str | None = None) -> None:
        """A filled area without an outline (a band between two lines)."""
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        self.add(f'<polygon class="band" points="{coords}" fill="{color}" fill-opacity="{opacity:.2f}">{title(tip)}</polygon>')

    def circle(
        self, x: float, y: float, r: float, color: str, opacity: float = 1.0, tip: str | None = None, css: str = "dot"
    ) -> None:
        self.add(
            f'<circle class="{css}" cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{color}" fill-opacity="{opacity:.2f}">'
            f"{title(tip)}</circle>"
        )

    def rect(
        self, x: float, y: float, w: float, h: float, color: str, tip: str | None = None, css: str = "bar"
    ) -> None:
        self.add(
            f'<rect class="{css}" x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" '
            f'fill="{color}">{title(tip)}</rect>'
        )

    def text(
        self,
        x: float,
        y: float,
        content: str,
        *,
        anchor: str = "start",
        size: int = 12,
        color: str = INK,
        rotate: float | None = None,
        weight: str = "normal",
        halo: bool = False,
    ) -> None:
        turn = f' transform="rotate({rotate:g} {x:.1f} {y:.1f})"' if rotate is not None else ""
        if halo:  # a white outline keeps a label readable over the lines it sits on
            turn += ' paint-order="stroke" stroke="#ffffff" stroke-width="3" stroke-linejoin="round"'
        self.add(
            f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" fill="{color}" '
            f'font-weight="{weight}"{turn}>{escape(content)}</text>'
        )

    # ------------------------------------------------------------------ guides

    def axes(self, x: Scale, y: Scale, xlabel: str, ylabel: str, *, xticks: Sequence[float] | None = None) -> None:
        """Grid lines, tick labels and axis titles for a plot using scales ``x`` and ``y``."""
        for value in y.ticks():
            py = y(value)
            self.line(self.left, py, self.right, py, GRID)
            self.text(self.left - 6, py + 4, fmt(value), anchor="end", size=11, color=MUTED)
        for value in xticks if xticks is not None else x.ticks():
            px = x(value)
            self.line(px, self.top, px, self.bottom, GRID)
            self.text(px, self.bottom + 16, fmt(value), anchor="middle", size=11, color=MUTED)
        self.line(self.left, self.bottom, self.right, self.bottom, MUTED)
        self.line(self.left, self.top, self.left, self.bottom, MUTED)
        self.text(
            (self.left + self.right) / 2,
            self.height - 10,
            xlabel + (" (log scale)" if x.log else ""),
            anchor="middle",
            size=12,
        )
        mid = (self.top + self.bottom) / 2
        self.text(16, mid, ylabel + (" (log scale)" if y.log else ""), anchor="middle", size=12, rotate=-90)

    def legend(self, items: Sequence[tuple[str, str]], x: float | None = None, y: float | None = None) -> None:
        """A row of colour swatches with labels, right-aligned above the plot by default."""
        widths = [22 + 7 * len(label) for label, _ in items]
        cx = x if x is not None else self.right - sum(widths)
        cy = y if y is not None else self.top - 6
        for (label, color), w in zip(items, widths, strict=True):
            self.rect(cx, cy - 9, 12, 10, color, css="swatch")
            self.text(cx + 16, cy, label, size=11)
            cx += w

    def render(self, label: str) -> str:
        body = "".join(self._parts)
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{escape(self.key)}" '
            f'width="{self.width}" height="{self.height}" viewBox="0 0 {self.width} {self.height}" '
            f'role="img" aria-label="{escape(label)}" font-family="{escape(FONT)}">{body}</svg>'
        )
