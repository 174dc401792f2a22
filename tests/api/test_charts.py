"""``Experiment.charts()``: the report's sections without a file, the same as ``write_report`` draws,
for a finished run and for one that has not reported yet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ray import tune

import raytuner
from raytuner.errors import ExperimentError
from raytuner.results.report import Chart


def train(config: dict[str, Any]) -> None:
    for t in range(1, 4):
        tune.report({"loss": (config["x"] - 0.3) ** 2 + 1.0 / t})


def test_charts_are_the_reports_sections_and_write_nothing(tmp_path: Path) -> None:
    spec = {
        "name": "charted",
        "storage": str(tmp_path / "runs"),
        "trainable": {"function": train},
        "metric": "loss",
        "mode": "min",
        "space": {"x": {"grid": [0.0, 0.5, 1.0]}},
        "search": {"algorithm": "grid"},
    }
    experiment = raytuner.run(spec, inline=True, progress=False)
    before = sorted(p.name for p in Path(experiment.folder).iterdir())
    charts = experiment.charts()
    assert sorted(p.name for p in Path(experiment.folder).iterdir()) == before  # nothing written
    written = experiment.write_report(tmp_path / "r.html")
    assert [(s.kind, type(s)) for s in charts] == [(s.kind, type(s)) for s in written.sections]
    assert any(isinstance(s, Chart) and "<svg" in s.svg for s in charts)


def test_before_any_report_charts_say_why(tmp_path: Path) -> None:
    folder = tmp_path / "runs" / "starting"
    folder.mkdir(parents=True)
    (folder / "status.json").write_text(json.dumps({"state": "running", "name": "starting", "metric": "loss"}))
    with pytest.raises(ExperimentError, match="nothing to report"):
        raytuner.open(str(folder)).charts()
