"""The Pareto front chart of a multi-objective experiment, opened in a real headless Chromium.

The experiment folder is written by raytuner's own results store (no Ray needed); the
chart must lay out with nonzero size, one visible dark dot per front trial and the line
joining them. Needs Debian's ``chromium``; skipped without it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from test_report_browser import CHROMIUM, measure

from raytuner.results.records import ExperimentBook, TrialRecord, TrialStatus
from raytuner.results.report import ChartKind, write_report
from raytuner.results.store import ResultsStore

pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(), reason="needs headless Chromium at /usr/bin/chromium")

OBJECTIVES = (("val_loss", "min"), ("num_params", "min"), ("latency_ms", "min"))


def three_objective_experiment(folder: Path, trials: int = 30) -> Path:
    folder.mkdir(parents=True)
    book = ExperimentBook("val_loss", -1.0, objectives=OBJECTIVES)
    store = ResultsStore(folder, book, {})
    rng = np.random.default_rng(0)
    for i in range(trials):
        record = TrialRecord(f"t{i:02d}", {"hidden": int(rng.integers(8, 256))})
        record.status = TrialStatus.COMPLETED if i % 7 else TrialStatus.ERROR
        size = float(record.config["hidden"] * 70)
        for step in (1, 2):
            metrics = {
                "val_loss": 1.0 / (1 + size / 4000) + rng.normal(0, 0.05) + 0.1 / step,
                "num_params": size,
                "latency_ms": size / 1000 + rng.uniform(0, 1),
            }
            result = {"training_iteration": step, "time_total_s": float(step), "timestamp": 1_790_000_000 + i}
            record.observe(book.metric, book.sign, metrics, step)
            store.add_result(record.trial_id, result, metrics)
        record.started_at, record.ended_at, record.iterations = 1_790_000_000.0 + i, 1_790_000_002.0 + i, 2
        book.trials[record.trial_id] = record
    store.finalize()
    return folder


def test_pareto_front_chart_renders_in_chromium(tmp_path: Path) -> None:
    folder = three_objective_experiment(tmp_path / "mo")
    front = [r for r in pq.read_table(folder / "trials.parquet").to_pylist() if r["pareto"]]
    assert 2 <= len(front) < 30 and all(r["status"] == "completed" for r in front)
    result = write_report(folder)
    kinds = [s.kind for s in result.drawn]
    assert kinds[0] is ChartKind.PARETO_FRONT  # first on the page
    html = result.html.read_text()
    assert "Only the first two of 3 objectives are drawn (latency_ms not shown)" in html
    svg = re.search(r'<svg [^>]*data-chart="pareto-front".*?</svg>', html, re.S)
    assert svg is not None and svg.group(0).count('class="dot front"') == len(front)
    size = measure(result.html, tmp_path)["pareto-front"]
    assert size["width"] > 500 and size["height"] > 100, size
    assert size["marks"] >= 30, size  # every trial's dot and the front's line, laid out and visible
