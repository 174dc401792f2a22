"""Multi-objective tuning end to end on a real Ray: NSGA-II and multi-objective TPE on ZDT1.

Each run's trials.parquet is read back from disk; its Pareto column is checked against an
independent numpy computation, the front against ZDT1's known one, and ``best``, ``show``
and ``report`` against the same front.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from raytuner.cli import app
from raytuner.errors import MetricNotReportedError
from raytuner.execution.events import NullListener
from raytuner.execution.runner import RunOptions, run_experiment
from raytuner.results.report import write_report
from raytuner.spec.loader import load_experiment_text
from raytuner.workloads.analytic import zdt1_front

pytestmark = pytest.mark.ray

SPEC = """\
name: zdt1-{algorithm}
trainable: {{builtin: analytic, objective: zdt1, iterations: 2, decay: 0.5}}
metric: [f1, f2]
mode: [min, min]
search: {{algorithm: {algorithm}, num_samples: 40, seed: 5, {options}}}
space: {{x1: {{uniform: [0, 1]}}, x2: {{uniform: [0, 1]}}}}
storage: {storage}
"""
OPTIONS = {"nsga2": "population_size: 8", "optuna_tpe": "n_startup_trials: 10"}


def non_dominated(points: np.ndarray) -> np.ndarray:
    le = (points[:, None, :] <= points[None, :, :]).all(axis=2)
    lt = (points[:, None, :] < points[None, :, :]).any(axis=2)
    return ~(le & lt).any(axis=0)


@pytest.fixture(scope="module")
def runs(ray_session: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    storage = tmp_path_factory.mktemp("mo") / "runs"
    folders = {}
    for algorithm, options in OPTIONS.items():
        text = SPEC.format(algorithm=algorithm, options=options, storage=storage)
        summary = run_experiment(load_experiment_text(text), RunOptions(), NullListener())
        assert summary.state.value == "completed"
        folders[algorithm] = summary.folder
    return folders


@pytest.mark.parametrize("algorithm", list(OPTIONS))
def test_pareto_column_is_the_non_dominated_completed_trials(runs: dict[str, Path], algorithm: str) -> None:
    table = pq.read_table(runs[algorithm] / "trials.parquet")
    meta = table.schema.metadata
    assert json.loads(meta[b"raytuner.objectives"]) == [["f1", "min"], ["f2", "min"]]
    assert meta[b"raytuner.metric"] == b"f1"  # metric_* columns keep the primary objective
    rows = table.to_pylist()
    assert len(rows) == 40 and all(r["status"] == "completed" for r in rows)
    assert all(r["metric_last"] == r["last/f1"] for r in rows)
    points = np.array([[r["last/f1"], r["last/f2"]] for r in rows])
    expected = non_dominated(points)
    assert [r["pareto"] for r in rows] == list(expected)
    front = points[expected]
    assert len(front) >= 2
    # the last report is f + decay / iterations: 0.25 above the function on both objectives
    gaps = front[:, 1] - 0.25 - np.array([zdt1_front(f1 - 0.25) for f1 in front[:, 0]])
    assert gaps.min() >= -1e-9  # nothing beats the true front
    assert gaps.min() < (0.3 if algorithm == "optuna_tpe" else 2.0), gaps
    status = json.loads((runs[algorithm] / "status.json").read_text())
    assert status["best"] is None and status["front"]["size"] == int(expected.sum())
    assert set(status["front"]["trial_ids"]) == {r["trial_id"] for r, on in zip(rows, expected, strict=True) if on}


@pytest.mark.parametrize("algorithm", list(OPTIONS))
def test_best_lists_the_front_sorted_by_the_first_objective(runs: dict[str, Path], algorithm: str) -> None:
    folder = runs[algorithm]
    table = pq.read_table(folder / "trials.parquet").to_pylist()
    front = sorted((r for r in table if r["pareto"]), key=lambda r: r["last/f1"])
    result = CliRunner().invoke(app, ["best", str(folder), "--format", "json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert [row["trial_id"] for row in listed] == [r["trial_id"] for r in front]
    assert listed[0]["f1"] == front[0]["last/f1"] and set(listed[0]["config"]) == {"x1", "x2"}
    table_out = CliRunner().invoke(app, ["best", str(folder)], env={"COLUMNS": "200"})
    assert table_out.exit_code == 0 and f"Pareto front of f1 (min), f2 (min): {len(front)} trials" in table_out.output
    assert front[0]["trial_id"] in table_out.output
    limited = CliRunner().invoke(app, ["best", str(folder), "-n", "1", "-f", "yaml"])
    assert limited.exit_code == 0 and limited.output.count("space:") == 1 and front[0]["trial_id"] in limited.output
    shown = CliRunner().invoke(app, ["show", str(folder), "--where", "pareto == true"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and shown.output.count("★") == len(front) + 1  # each row, and the title
    listed_all = CliRunner().invoke(app, ["ls", "--storage", str(folder.parent), "--json"])
    assert listed_all.exit_code == 0, listed_all.output
    assert {row["name"]: row["front"] for row in json.loads(listed_all.output)}[folder.name] == len(front)
    ls_table = CliRunner().invoke(app, ["ls", "--storage", str(folder.parent)], env={"COLUMNS": "200"})
    assert f"Pareto front: {len(front)} trials" in ls_table.output


def test_report_draws_the_front(runs: dict[str, Path]) -> None:
    folder = runs["optuna_tpe"]
    front = [r for r in pq.read_table(folder / "trials.parquet").to_pylist() if r["pareto"]]
    html = write_report(folder).html.read_text()
    svg = re.search(r'<svg [^>]*data-chart="pareto-front".*?</svg>', html, re.S)
    assert svg is not None
    assert svg.group(0).count('class="dot front"') == len(front)
    assert svg.group(0).count('class="dot trial"') == 40 - len(front)
    assert 'class="series front"' in svg.group(0)
    assert f"{len(front)} of 40 completed trials" in html


def test_a_missing_second_metric_stops_the_run(ray_session: None, tmp_path: Path) -> None:
    text = SPEC.format(algorithm="random", options="", storage=tmp_path / "runs").replace("[f1, f2]", "[f1, f3]")
    with pytest.raises(MetricNotReportedError, match=r"the spec's metric 'f3' is not among them"):
        run_experiment(load_experiment_text(text), RunOptions(), NullListener())
