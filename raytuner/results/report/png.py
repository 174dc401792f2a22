"""``--png``: the same SVG charts rendered to PNG by headless Chromium (no Python dependency).

Chromium is found as ``$RAYTUNER_CHROMIUM``, else ``chromium``, ``chromium-browser``,
``google-chrome`` or ``google-chrome-stable`` on the PATH (Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from raytuner.errors import ExperimentError
from raytuner.results.report.section import Chart

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
SCALE = 2  # device pixels per SVG pixel: sharp on high-density screens and in slides
TIMEOUT_S = 60
MIN_HEIGHT = 150  # headless Chromium leaves windows shorter than about 100 px blank

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def find_browser() -> str | None:
    configured = os.environ.get("RAYTUNER_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() or shutil.which(configured) else None
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


def render_pngs(charts: list[Chart], out_dir: Path) -> list[Path]:
    """One ``<chart>.png`` per chart in ``out_dir``.

    Raises:
        ExperimentError: no Chromium found, or it failed to render a chart.
    """
    browser = find_browser()
    if browser is None:
        raise ExperimentError(
            "--png renders the charts with headless Chromium, and none was found "
            f"(looked for $RAYTUNER_CHROMIUM, {', '.join(BROWSERS)}); install it (Debian/Ubuntu: "
            "apt-get install chromium) or open the HTML report instead"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="raytuner-png-") as tmp:
        # One at a time: side by side they are slower on small machines (Chromium is multi-process).
        return [_finish(browser, chart, _start(browser, chart, Path(tmp), out_dir), out_dir) for chart in charts]


def _start(browser: str, chart: Chart, tmp: Path, out_dir: Path) -> subprocess.Popen[str]:
    """Launch one Chromium screenshot."""
    page = tmp / f"{chart.kind.value}.html"
    page.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><style>html,body{margin:0;background:#fff}"
        f"svg{{display:block}}</style></head><body>{chart.svg}</body></html>",
        encoding="utf-8",
    )
    command = [
        browser,
        *FLAGS,
        f"--user-data-dir={tmp / ('profile-' + chart.kind.value)}",
        f"--force-device-scale-factor={SCALE}",
        f"--window-size={chart.width},{max(chart.height, MIN_HEIGHT)}",
        f"--screenshot={out_dir / (chart.kind.value + '.png')}",
        page.as_uri(),
    ]
    try:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except OSError as exc:
        raise ExperimentError(f"--png: cannot start {browser}: {exc}") from exc


def _finish(browser: str, chart: Chart, process: subprocess.Popen[str], out_dir: Path) -> Path:
    target = out_dir / f"{chart.kind.value}.png"
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        process.kill()
        process.communicate()
        raise ExperimentError(f"--png: {browser} took over {TIMEOUT_S} s to render {chart.kind.value}") from exc
    if process.returncode != 0 or not target.is_file():
        tail = (stderr or stdout).strip().splitlines()[-1:] or ["no output"]
        raise ExperimentError(
            f"--png: {browser} exited with {process.returncode} rendering {chart.kind.value}: {tail[0]}"
        )
    return target
