"""The report opened in a real headless Chromium: every chart lays out with nonzero size and visible marks.

Needs Debian's ``chromium`` (``apt-get install -y chromium``); skipped without it.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from test_report_html import asha_experiment, pbt_experiment
from typer.testing import CliRunner

from raytuner.cli import app
from raytuner.results.report import ChartKind, write_report
from raytuner.results.report.png import FLAGS

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(), reason="needs headless Chromium at /usr/bin/chromium (apt-get install -y chromium)"
)

# Test-only: measured in the page after layout, written into the DOM for --dump-dom.
PROBE = """<script>
const out = {};
for (const svg of document.querySelectorAll('svg.chart')) {
  const box = svg.getBoundingClientRect();
  let marks = 0;
  for (const el of svg.querySelectorAll('polyline, circle, rect.bar, path.exploit')) {
    const b = el.getBBox();
    if (b.width > 0 || b.height > 0) marks++;
  }
  out[svg.dataset.chart] = {width: box.width, height: box.height, marks: marks};
}
const pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
</script>"""


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def measure(html_path: Path, tmp: Path) -> dict[str, dict[str, float]]:
    probed = html_path.with_name("probed.html")
    probed.write_text(html_path.read_text().replace("</body>", PROBE + "</body>"))
    done = chromium(tmp, "--window-size=1400,3000", "--dump-dom", probed.as_uri())
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, done.stderr[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"'))  # type: ignore[no-any-return]


def png_size_and_colours(path: Path) -> tuple[int, int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    idat, pos = b"", 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


def test_every_chart_renders_in_chromium(tmp_path: Path) -> None:
    asha = write_report(asha_experiment(tmp_path / "asha"))
    pbt = write_report(pbt_experiment(tmp_path / "pbt"))
    sizes = measure(asha.html, tmp_path) | {"pbt-lineage": measure(pbt.html, tmp_path)["pbt-lineage"]}
    # multi-objective: test_report_pareto_browser; the final model: tests/final/test_refit.py
    assert set(sizes) == {k.value for k in ChartKind} - {"pareto-front", "final-model"}
    for name, size in sizes.items():
        assert size["width"] > 500 and size["height"] > 100, (name, size)
        assert size["marks"] >= 3, (name, size)
    assert sizes["learning-curves"]["marks"] >= 24
    screenshot = tmp_path / "report.png"
    done = chromium(tmp_path, "--hide-scrollbars", "--window-size=1100,3600", f"--screenshot={screenshot}", asha.html.as_uri())
    assert screenshot.is_file(), done.stderr[-2000:]
    width, height, colours = png_size_and_colours(screenshot)
    assert (width, height) == (1100, 3600) and colours > 50


def test_png_option_writes_the_same_charts_as_images(tmp_path: Path) -> None:
    folder = pbt_experiment(tmp_path / "pbt")
    result = CliRunner().invoke(app, ["report", str(folder), "--png"])
    assert result.exit_code == 0, result.output
    pngs = sorted((folder / "report-png").glob("*.png"))
    drawn = {k.value for k in ChartKind} - {"early-stopping", "pareto-front", "final-model"}  # PBT: FIFO-like
    assert [p.stem for p in pngs] == sorted(drawn)
    for path in pngs:
        width, height, colours = png_size_and_colours(path)
        assert width == 2000 and height > 150 and colours > 20, path  # 1000 SVG px at device scale 2
