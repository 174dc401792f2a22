"""``raytuner dashboard`` served for real (a subprocess on a free loopback port) and driven by a
real headless Chromium over its DevTools protocol: the catalog, a run appearing and growing
while the page stays open, the where filter, no console error, no request to another host.

Needs Debian's ``chromium`` (``make chromium``); skipped without it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from cdp import Browser
from dash_runs import run

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.subprocess,
    pytest.mark.skipif(not CHROMIUM.is_file(), reason="needs headless Chromium at /usr/bin/chromium (make chromium)"),
]

# Test-only: the iterations of every trial's last report in the best-so-far chart (their dots' tooltips).
LAST_REPORTS = """(() => {
  const dots = document.querySelectorAll('#best-so-far circle title');
  let total = 0;
  for (const t of dots) { const m = /last .* at iteration (\\d+)/.exec(t.textContent); if (m) total += Number(m[1]); }
  return total;
})()"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    opened = Browser(str(CHROMIUM), tmp_path_factory.mktemp("chromium"))
    yield opened
    opened.close()


def shoot(browser: Browser, name: str) -> None:
    """docs/dashboard.md's pictures: RAYTUNER_SCREENSHOTS=docs python -m pytest tests/dashboard."""
    if os.environ.get("RAYTUNER_SCREENSHOTS"):
        browser.screenshot(Path(os.environ["RAYTUNER_SCREENSHOTS"]) / name)


def clean(browser: Browser, server: str) -> None:
    """Nothing went wrong in the page, and it asked nothing of another host."""
    assert browser.errors() == []
    assert browser.hosts() <= {server.removeprefix("http://")}, browser.hosts()


def test_the_catalog_lists_every_experiment_and_a_live_run_appears(storage: Path, server: str, browser: Browser) -> None:
    browser.go(server + "/")
    browser.wait("document.querySelector('tr[data-name=\"finished\"]') !== null")
    assert "completed" in browser.js("document.querySelector('tr[data-name=\"finished\"]').textContent")
    assert browser.js("document.querySelector('tr[data-name=\"broken\"]').className") == "broken"
    browser.js("window.stayed = true")
    live = run(storage, "live", iterations=8, sleep=0.25, samples=6)
    try:
        browser.wait("document.querySelector('tr[data-name=\"live\"]') !== null")
        assert browser.js("window.stayed === true")  # shown without a reload
        shoot(browser, "dashboard-catalog.png")
        browser.go(server + "/e/live")
        browser.js("window.stayed = true")
        first = browser.wait(LAST_REPORTS)
        grown = browser.wait(f"{LAST_REPORTS} > {first} && {LAST_REPORTS}")
        assert grown > first and browser.js("window.stayed === true")
        assert live.wait(timeout=300) == 0
        browser.wait("document.getElementById('state').textContent === 'completed'")
    finally:
        if live.poll() is None:
            live.kill()
    shoot(browser, "dashboard-experiment.png")
    clean(browser, server)


def test_a_where_filter_narrows_the_trial_table(server: str, browser: Browser) -> None:
    browser.go(server + "/e/finished")
    browser.wait("document.querySelectorAll('#trial-table tbody tr').length === 8")
    browser.js("document.getElementById('where').value = 'config/x > 0'")
    browser.js("document.querySelector('#filter button').click()")
    shown = browser.wait("(() => { const n = document.querySelectorAll('#trial-table tbody tr').length; return n < 8 && n; })()")
    count = browser.js("document.getElementById('count').textContent")
    assert re.fullmatch(rf"{shown} of 8 trials", count), count
    column = browser.js("Array.from(document.querySelectorAll('#trial-table th')).findIndex(th => th.textContent === 'config/x')")
    xs = browser.js(
        f"Array.from(document.querySelectorAll('#trial-table tbody tr')).map(r => Number(r.cells[{column}].textContent))"
    )
    assert all(x > 0 for x in xs) and len(xs) == shown
    browser.js(f"document.querySelectorAll('#trial-table th')[{column}].click()")  # sort by it, on the server
    browser.wait(f"document.querySelectorAll('#trial-table th')[{column}].textContent === 'config/x ↑'")
    rows = f"Array.from(document.querySelectorAll('#trial-table tbody tr')).map(r => Number(r.cells[{column}].textContent))"
    assert browser.js(rows) == sorted(xs)
    browser.go(server + "/e/broken")
    browser.wait("!document.getElementById('problem').hidden")
    assert "trials.parquet" in browser.js("document.getElementById('problem').textContent")
    # the broken folder is shown as such; its failed JSON answers are the page's own, not errors of the page
    browser.events.clear()
    browser.go(server + "/e/finished")
    browser.wait("document.querySelector('#best-so-far svg') !== null")
    clean(browser, server)
