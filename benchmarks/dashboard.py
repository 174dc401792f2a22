"""``raytuner dashboard`` at scale: 1,000 experiments, and one experiment of 10,000 trials x
100 reports (1,000,000 rows).

Builds both storage roots (the big experiment written directly with pyarrow, as
``export_scale.py`` does; the 1,000 by copying one small inline run), serves each with the real
``raytuner dashboard`` command on loopback, and measures what a user waits for: the seconds
until each page's data has arrived (the HTML, then the JSON its script asks for), the bytes
sent, and the server's peak resident memory (``VmHWM``). With Chromium present, the time from
navigation until the page shows its data (every row of the catalog; the trial table and the
best-so-far chart) is measured first, in a real headless browser, before anything is cached;
the charts' request after it is answered from the cache (the second catalog request shows a
warm one).
Nothing here asserts a time; the peer is ``raytuner report`` of the same folder (the static
report the dashboard's charts come from). Results: ``benchmarks/results/dashboard.json``; also
the ``dashboard`` section of ``benchmarks/run.py``.

    .venv/bin/python benchmarks/dashboard.py                        # 1,000 experiments; 10,000 x 100
    .venv/bin/python benchmarks/dashboard.py --experiments 100 --trials 1000
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VARIANTS = ("raytuner-dashboard",)  # one variant (its peer, ``raytuner report``, is measured beside it)
RAYTUNER = str(Path(sys.executable).parent / "raytuner")
CHROMIUM = Path("/usr/bin/chromium")
SMALL = """
name: small
trainable: {builtin: analytic, objective: sphere, iterations: 5}
metric: loss
mode: min
space: {x: {uniform: [-2, 2]}}
search: {algorithm: random, num_samples: 4, seed: 1}
execution: {backend: inline}
"""


def many(root: Path, count: int) -> None:
    spec = root.parent / "small.yaml"
    spec.write_text(SMALL)
    subprocess.run([RAYTUNER, "run", str(spec), "--storage", str(root), "-q"], check=True, capture_output=True)
    for i in range(1, count):
        shutil.copytree(root / "small", root / f"small-{i:04d}")


def big(root: Path, trials: int, reports: int) -> None:
    sys.path.insert(0, str(HERE))
    from export_scale import build_raytuner_folder

    folder = root / "big"
    build_raytuner_folder(folder, trials, reports)
    (folder / "status.json").write_text(json.dumps({"state": "completed", "name": "big", "metric": "loss", "mode": "min"}))


def fetch(url: str) -> tuple[float, int]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=3600) as response:
        size = len(response.read())
    return time.perf_counter() - started, size


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def serve(root: Path, urls: list[str], browse: list[tuple[str, list[tuple[str, str]]]]) -> dict[str, Any]:
    """Serve ``root``; open each of ``browse``'s pages in Chromium, timing each milestone (a label
    and a JavaScript condition) from the navigation; then time each of ``urls``."""
    process = subprocess.Popen([RAYTUNER, "dashboard", "--storage", str(root)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    base = process.stdout.readline().split(": ", 1)[1].split()[0].rstrip("/")
    measured: dict[str, Any] = {"requests": {}, "browser_s": {}}
    try:
        fetch(base + "/static/dashboard.js")  # the server is up
        if CHROMIUM.is_file():  # first, while nothing is cached: what a user opening it waits for
            sys.path.insert(0, str(HERE.parent / "tests" / "dashboard"))
            import cdp
            from cdp import Browser

            cdp.WAIT_S = 3600  # measured here, not limited

            with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:  # Chromium may still be writing it
                browser = Browser(str(CHROMIUM), Path(profile))
                try:
                    for page, milestones in browse:
                        started = time.perf_counter()
                        browser.go(base + page)
                        for label, ready in milestones:
                            browser.wait(ready)
                            measured["browser_s"][f"{page} {label}"] = round(time.perf_counter() - started, 3)
                finally:
                    browser.close()
        for url in urls:
            seconds, size = fetch(base + url)
            measured["requests"].setdefault(url, []).append({"s": round(seconds, 3), "bytes": size})
        measured["server_peak_rss_mb"] = round(peak_rss_mb(process.pid), 1)
    finally:
        process.terminate()
        process.wait(timeout=60)
    return measured


def report_seconds(folder: Path) -> tuple[float, int]:
    """Seconds ``raytuner report`` of ``folder`` takes, and the bytes of the file it writes."""
    target = folder.parent / "report.html"
    started = time.perf_counter()
    subprocess.run([RAYTUNER, "report", str(folder), "-o", str(target)], check=True, capture_output=True)
    return round(time.perf_counter() - started, 3), target.stat().st_size


TRIAL = "/e/big/trial/00000_00000"


def measure(tmp: Path, experiments: int = 1000, trials: int = 10_000, reports: int = 100) -> dict[str, Any]:
    """Both storage roots built under ``tmp``, each served and measured."""
    print(f"dashboard: {experiments} experiments; {trials} trials x {reports} reports ...", file=sys.stderr, flush=True)
    results: dict[str, Any] = {"experiments": experiments, "trials": trials, "reports": reports}
    catalog = tmp / "many"
    catalog.mkdir(parents=True)
    many(catalog, experiments)
    rows = f"document.querySelectorAll('#experiments tbody tr').length === {experiments}"
    results["catalog"] = serve(catalog, ["/", "/api/experiments", "/api/experiments"], [("/", [("every row", rows)])])
    root = tmp / "one"
    big(root, trials, reports)
    urls = ["/e/big", "/api/e/big/trials", "/api/e/big/trials?where=config/lr%20%3E%200.01&sort=config/lr"]
    urls += ["/api/e/big/charts", TRIAL]
    table_rows = "document.querySelectorAll('#trial-table tbody tr').length"
    charts = "document.querySelector('#best-so-far svg') !== null"
    results["experiment"] = serve(root, urls, [("/e/big", [("trial table", table_rows), ("charts", charts)])])
    seconds, size = report_seconds(root / "big")
    results["experiment"]["raytuner_report_s"], results["experiment"]["raytuner_report_bytes"] = seconds, size
    return results


def table(result: dict[str, Any]) -> list[str]:
    """The measurements as docs/performance.md's dashboard table."""
    many, one = result["catalog"], result["experiment"]
    n, size = f"{result['experiments']:,} experiments", f"{result['trials']:,} trials x {result['reports']:,} reports"

    def request(measured: dict[str, Any], url: str, i: int = 0) -> tuple[str, str]:
        r = measured["requests"].get(url, [])
        return (f"{r[i]['s']:.2f}", f"{r[i]['bytes'] / 1e3:,.0f} KB") if len(r) > i else ("-", "-")

    def browser(measured: dict[str, Any], key: str) -> str:
        value = measured["browser_s"].get(key)
        return f"{value:.2f}" if value is not None else "- (no Chromium)"

    charts_s, charts_b = request(one, "/api/e/big/charts")
    rows = [
        (f"{n}: the list in Chromium, every row shown (from navigation)", browser(many, "/ every row"), "",
         f"{many['server_peak_rss_mb']:.0f} MB"),
        (f"{n}: `/api/experiments` (what the list polls every 1.5 s)", *request(many, "/api/experiments", 1), ""),
        (f"{size}: the trial table in Chromium (first 50 rows, from navigation)", browser(one, "/e/big trial table"), "", ""),
        (f"{size}: `/api/e/big/trials`, `--where` and sort",
         *request(one, "/api/e/big/trials?where=config/lr%20%3E%200.01&sort=config/lr"), ""),
        (f"{size}: the charts in Chromium (drawn once, nothing cached; from navigation)",
         browser(one, "/e/big charts"), charts_b, f"{one['server_peak_rss_mb']:.0f} MB (whole run)"),
        (f"{size}: `/api/e/big/charts` again (files unchanged: cached)", charts_s, charts_b, ""),
        (f"{size}: a trial's page (reads the row groups holding its reports)", *request(one, TRIAL), ""),
        ("peer: `raytuner report` of the same folder (the same charts, one file)", f"{one['raytuner_report_s']:.2f}",
         f"{one.get('raytuner_report_bytes', 0) / 1e3:,.0f} KB", ""),
    ]  # fmt: skip
    lines = ["| what | seconds | bytes | server peak RSS |", "|---|---:|---:|---:|"]
    return lines + [f"| {what} | {s} | {b} | {m} |" for what, s, b, m in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--reports", type=int, default=100)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="raytuner-dashboard-bench-") as tmp:
        results = measure(Path(tmp), args.experiments, args.trials, args.reports)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "dashboard.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print("\n".join(table(results)))


if __name__ == "__main__":
    main()
