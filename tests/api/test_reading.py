"""The API's reading methods that the CLI's reading commands are written over (select, ranking,
compare, export, write_report, experiments), on real inline runs read back from Parquet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from ray import tune
from typer.testing import CliRunner

import raytuner
from raytuner.cli import app


def _spec(name: str, storage: Path, shift: float) -> dict[str, Any]:
    def train(config: dict[str, Any]) -> None:
        for t in range(1, 3):
            tune.report({"loss": (config["x"] - shift) ** 2 + 1.0 / t})

    return {
        "name": name,
        "storage": str(storage),
        "trainable": {"function": train},
        "metric": "loss",
        "mode": "min",
        "space": {"x": {"grid": [0.0, 0.5, 1.0]}},
        "search": {"algorithm": "grid"},
    }


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = tmp_path_factory.mktemp("reading") / "runs"
    raytuner.run(_spec("left", runs, 0.0), inline=True, progress=False)
    raytuner.run(_spec("right", runs, 1.0), inline=True, progress=False)
    return runs


def test_select_and_ranking_are_what_show_and_best_print(storage: Path) -> None:
    experiment = raytuner.open("right", storage=str(storage))
    view = experiment.select(where="config/x > 0.2", limit=1)
    assert (view.name, view.total, view.metric, view.mode) == ("right", 3, "loss", "min")
    assert view.rows.num_rows == 1 and view.rows.column("config/x").to_pylist() == [1.0]  # best first
    assert view.best_trial_id == view.rows.column("trial_id")[0].as_py() and view.decisions == 0
    ranking = experiment.ranking(2)
    assert not ranking.is_front and ranking.objectives == [("loss", "min")]
    assert [t.config["x"] for t in ranking.trials] == [1.0, 0.5]
    assert ranking.trials == experiment.best(2)
    shown = json.loads(CliRunner().invoke(app, ["best", "right", "--storage", str(storage), "-f", "json"]).stdout)
    assert shown["trial_id"] == ranking.trials[0].trial_id and shown["loss"] == ranking.trials[0].values["loss"]


def test_compare_export_report_and_the_list(storage: Path, tmp_path: Path) -> None:
    left, right = (raytuner.open(name, storage=str(storage)) for name in ("left", "right"))
    comparison = left.compare(right)
    assert [side.name for side in comparison.sides] == ["left", "right"] and comparison.better == "tie"
    assert [d.key for d in comparison.config] == ["x"]  # the best configurations differ in x only
    summary = right.export("trials", "parquet", str(tmp_path / "t.parquet"), columns="trial_id,config/*")
    assert summary.rows == 3 and pq.read_table(tmp_path / "t.parquet").column_names == ["trial_id", "config/x"]
    result = right.write_report(tmp_path / "r.html")
    assert result.html == tmp_path / "r.html" and result.drawn and "<svg" in result.html.read_text()
    assert [info.name for info in raytuner.experiments(str(storage))] == ["left", "right"]
