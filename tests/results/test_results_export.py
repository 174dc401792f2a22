"""show, export and compare on real experiments: raytuner's own, a crashed one, plain Ray Tune's."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from raytuner.cli import app
from raytuner.execution.events import Recorder
from raytuner.execution.runner import RunOptions, run_experiment
from raytuner.spec.loader import load_experiment_text

pytestmark = [pytest.mark.ray, pytest.mark.slow]
runner = CliRunner()

BOOM = """
name: boom
trainable: {function: "user_trainables:boom"}
metric: loss
mode: min
space: {x: {grid: [-1.0, -0.5, 0.5, 1.0]}}
search: {algorithm: grid}
"""
QUADRATIC = """
name: quad
trainable: {function: "user_trainables:quadratic"}
metric: loss
mode: min
space: {x: {grid: [0.5, 1.5, 3.0]}}
search: {algorithm: grid}
"""


@pytest.fixture(scope="module")
def runs(ray_session: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two raytuner experiments (one with failing trials) and a plain Ray Tune folder."""
    import user_trainables
    from ray import tune

    storage = tmp_path_factory.mktemp("runs")
    for text in (BOOM, QUADRATIC):
        experiment = load_experiment_text(text + f"\nstorage: {storage}\n")
        run_experiment(experiment, RunOptions(), Recorder())
    saved = os.environ.pop("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", None)  # Ray's default loggers on
    try:
        tune.Tuner(
            user_trainables.quadratic,
            param_space={"x": tune.grid_search([0.0, 2.0]), "depth": tune.grid_search([1, 3])},
            tune_config=tune.TuneConfig(metric="loss", mode="min"),
            run_config=tune.RunConfig(name="plain", storage_path=str(storage / "ray"), verbose=0),
        ).fit()
    finally:
        if saved is not None:
            os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = saved
    return storage


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output + result.stderr
    return result.stdout


def test_show_filters_and_sorts_trials_with_their_errors(runs: Path) -> None:
    rows = json.loads(invoke("show", "boom", "--storage", str(runs), "--where", 'status == "error"', "--json"))
    assert sorted(r["config/x"] for r in rows) == [0.5, 1.0]
    assert all("ValueError" in r["error"] and "refuses it" in r["error"] for r in rows)

    ranked = json.loads(invoke("show", "boom", "--storage", str(runs), "--json", "-c", "trial_id,metric_best,config/*"))
    assert [r["metric_best"] for r in ranked] == [0.25, 1.0, None, None]  # best first, unscored last
    assert set(ranked[0]) == {"trial_id", "metric_best", "config/x"}

    table = invoke("show", "boom", "--storage", str(runs), "--sort", "config/x", "--desc")
    assert "4 of 4 trials" in table and "ValueError: x=1.000 is positive" in table

    bad = runner.invoke(app, ["show", "boom", "--storage", str(runs), "--where", "config/x > 'a' or"])
    assert bad.exit_code == 2 and "expected a column name" in bad.stderr
    unknown = runner.invoke(app, ["show", "boom", "--storage", str(runs), "--where", "lr > 1"])
    assert unknown.exit_code == 2 and "no column 'lr'" in unknown.stderr


def test_export_results_with_trial_columns_reads_back_in_pyarrow_pandas_duckdb(runs: Path, tmp_path: Path) -> None:
    target = tmp_path / "quad.parquet"
    invoke(
        "export", "quad", "--storage", str(runs), "-o", str(target), "-c", "trial_id,training_iteration,loss,config/*"
    )
    table = pq.read_table(target)
    assert table.num_rows == 15  # 3 trials x 5 reports
    assert table.column_names == ["trial_id", "training_iteration", "loss", "config/x"]
    assert table.schema.field("config/x").type == pa.float64()
    assert table.schema.metadata[b"raytuner.metric"] == b"loss"
    best = duckdb.sql(f"select min(loss) from '{target}' where \"config/x\" = 1.5").fetchall()
    assert best[0][0] == pytest.approx(0.25 + 1 / 5)

    text = invoke(
        "export", "quad", "--storage", str(runs), "-f", "csv", "--where", "config/x < 1 and training_iteration >= 4"
    )
    frame = pd.read_csv(io.StringIO(text))
    assert len(frame) == 2 and set(frame["training_iteration"]) == {4, 5}
    assert "config/x" not in frame.columns  # used by --where, not asked for in the output

    lines = invoke("export", "boom", "--storage", str(runs), "-t", "trials", "-f", "jsonl", "-w", "error is not null")
    trials = [json.loads(line) for line in lines.splitlines()]
    assert len(trials) == 2 and all(t["status"] == "error" and t["started_at"].endswith("+0000") for t in trials)


def test_a_crashed_run_is_read_from_its_parts_without_touching_the_folder(runs: Path, tmp_path: Path) -> None:
    folder = tmp_path / "store" / "crashed"
    shutil.copytree(runs / "quad", folder)
    whole = pq.read_table(folder / "results.parquet")
    parts = folder / "results.parts"
    parts.mkdir(exist_ok=True)
    pq.write_table(whole.slice(0, 7), parts / "part-000000.parquet")
    late = whole.slice(7).set_column(whole.schema.get_field_index("step"), "step", pa.array(["?"] * 8))
    pq.write_table(late, parts / "part-000001.parquet")  # a metric turned non-numeric mid-run
    (folder / "results.parquet").unlink()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    status = json.loads((folder / "status.json").read_text())
    status.update(state="running", driver={"pid": int(dead.stdout), "hostname": socket.gethostname()})
    (folder / "status.json").write_text(json.dumps(status))
    before = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))

    target = tmp_path / "out.parquet"
    invoke("export", str(folder), "-o", str(target))
    table = pq.read_table(target)
    assert table.num_rows == 15
    assert table.schema.field("step").type == pa.string()  # the documented rule: string wins
    assert sorted(table.column("loss").to_pylist()) == sorted(whole.column("loss").to_pylist())
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == before

    rows = json.loads(invoke("ls", "--storage", str(tmp_path / "store"), "--json"))
    assert [r["state"] for r in rows] == ["crashed?"]


def test_plain_ray_tune_folder_exports_with_the_same_schema(runs: Path, tmp_path: Path) -> None:
    folder = next((runs / "ray").iterdir())
    assert list(folder.glob("*/result.json")), "Ray's JSON logger should have run"
    target = tmp_path / "plain-trials.parquet"
    invoke("export", str(folder), "-t", "trials", "-o", str(target))
    trials = pq.read_table(target)
    assert trials.num_rows == 4
    assert set(trials.column("status").to_pylist()) == {"completed"}
    assert trials.schema.field("config/x").type == pa.float64()
    assert trials.schema.field("config/depth").type == pa.int64()  # typed from the values found
    assert trials.column("metric_best").to_pylist() == pytest.approx([1.0 + 1 / 5] * 4)  # (x-1)^2 + 1/t
    assert set(trials.column("iterations").to_pylist()) == {5}
    own = set(pq.read_table(runs / "quad" / "trials.parquet").column_names)
    assert {c for c in own if not c.startswith(("config/", "last/"))} <= set(trials.column_names)

    csv_path = tmp_path / "plain.csv"
    invoke(
        "export",
        str(folder),
        "-f",
        "csv",
        "-o",
        str(csv_path),
        "-c",
        "trial_id,training_iteration,loss,step,config/depth",
    )
    per_trial = duckdb.sql(f"select trial_id, count(*), max(step) from read_csv('{csv_path}') group by 1").fetchall()
    assert sorted((n, s) for _, n, s in per_trial) == [(5, 5)] * 4

    compared = json.loads(invoke("compare", "quad", str(folder), "--storage", str(runs), "--json"))
    assert compared["left"]["best_value"] == pytest.approx(0.25 + 0.2)
    assert compared["better"] in ("left", "right")
    assert {d["key"] for d in compared["config"]} >= {"depth"}


def test_compare_two_raytuner_experiments(runs: Path) -> None:
    compared = json.loads(invoke("compare", "boom", "quad", "--storage", str(runs), "--json"))
    assert compared["left"]["best_value"] == 0.25 and compared["left"]["trials"] == {"completed": 2, "error": 2}
    assert compared["better"] == "left"  # 0.25 (boom, x=-0.5) beats 0.45 (quad, x=1.5)
    keys = {d["key"] for d in compared["spec"]}
    assert "trainable.function" in keys and "space.x.grid" in keys and "name" not in keys
    assert [d["key"] for d in compared["config"]] == ["x"]
    text = invoke("compare", "boom", "quad", "--storage", str(runs))
    assert "(better)" in text and "spec differences" in text
