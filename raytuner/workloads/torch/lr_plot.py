"""The learning-rate range test as a small self-contained SVG (no plotting library needed)."""

from __future__ import annotations

import math
from html import escape

from raytuner.workloads.torch.lr_find import LrFindResult

WIDTH, HEIGHT, PAD = 720, 400, 60


def lr_find_svg(result: LrFindResult, title: str) -> str:
    """Smoothed loss against lr (log scale), with the suggested and divergence lrs marked."""
    points = [(lr, loss) for lr, loss in zip(result.lrs, result.losses, strict=True) if math.isfinite(loss) and lr > 0]
    if not points:
        points = [(1.0, 0.0)]
    xs = [math.log10(lr) for lr, _ in points]
    best = min(loss for _, loss in points)
    # Clip the blow-up so the interesting part of the curve stays readable.
    ceiling = min(max(loss for _, loss in points), best + 4 * (points[0][1] - best if points[0][1] > best else 1.0))
    ys = [min(loss, ceiling) for _, loss in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1

    def sx(x: float) -> float:
        return PAD + (x - x0) / (x1 - x0) * (WIDTH - 2 * PAD)

    def sy(y: float) -> float:
        return HEIGHT - PAD - (y - y0) / (y1 - y0) * (HEIGHT - 2 * PAD)

    path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys, strict=True))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" '
        'font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="24" text-anchor="middle" font-size="15">{escape(title)}</text>',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="black"/>',
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="black"/>',
    ]
    for decade in range(math.ceil(x0), math.floor(x1) + 1):
        x = sx(decade)
        parts.append(f'<line x1="{x:.1f}" y1="{HEIGHT - PAD}" x2="{x:.1f}" y2="{HEIGHT - PAD + 5}" stroke="black"/>')
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - PAD + 18}" text-anchor="middle">1e{decade}</text>')
    for frac in (0.0, 0.5, 1.0):
        y = y0 + frac * (y1 - y0)
        parts.append(f'<text x="{PAD - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:.3g}</text>')
    parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT - 15}" text-anchor="middle">learning rate (log scale)</text>')
    parts.append(
        f'<text x="15" y="{HEIGHT / 2}" transform="rotate(-90 15 {HEIGHT / 2})" text-anchor="middle">'
        "smoothed training loss</text>"
    )
    parts.append(f'<polyline class="loss" fill="none" stroke="#1f77b4" stroke-width="2" points="{path}"/>')
    marks = [("suggested", result.suggested_lr, "#2ca02c")]
    if result.divergence_lr is not None:
        marks.append(("diverges", result.divergence_lr, "#d62728"))
    for label, lr, colour in marks:
        if lr > 0 and x0 <= math.log10(lr) <= x1:
            x = sx(math.log10(lr))
            parts.append(
                f'<line class="{label}" x1="{x:.1f}" y1="{PAD}" x2="{x:.1f}" y2="{HEIGHT - PAD}" '
                f'stroke="{colour}" stroke-dasharray="5,4"/>'
            )
            right = x > WIDTH - PAD - 130  # near the right edge: write the label to the left
            anchor, tx = ("end", x - 4) if right else ("start", x + 4)
            parts.append(
                f'<text x="{tx:.1f}" y="{PAD + 14}" fill="{colour}" text-anchor="{anchor}">{label} {lr:.3g}</text>'
            )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
