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
import yaml
from loopback_ports import free_port
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
    invoke("export", "quad", "--storage", str(runs), "-o", str(target), "-c", "trial_id,training_iteration,loss,config/*")
    table = pq.read_table(target)
    assert table.num_rows == 15  # 3 trials x 5 reports
    assert table.column_names == ["trial_id", "training_iteration", "loss", "config/x"]
    assert table.schema.field("config/x").type == pa.float64()
    assert table.schema.metadata[b"raytuner.metric"] == b"loss"
    best = duckdb.sql(f"select min(loss) from '{target}' where \"config/x\" = 1.5").fetchall()
    assert best[0][0] == pytest.approx(0.25 + 1 / 5)

    text = invoke("export", "quad", "--storage", str(runs), "-f", "csv", "--where", "config/x < 1 and training_iteration >= 4")
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
    spans = zip(trials.column("started_at").to_pylist(), trials.column("ended_at").to_pylist(), strict=True)
    assert all(ended >= started for started, ended in spans)  # Ray's whole-second timestamps once ended first
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


def test_compare_skips_keys_null_or_missing_on_both_sides(runs: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(runs / "quad", store / "left")
    shutil.copytree(runs / "quad", store / "right")
    spec = yaml.safe_load((store / "left" / "spec.yaml").read_text())
    spec["trainable"]["fail_at"] = None  # the other spec leaves the key out: the same thing
    spec["trainable"]["iterations"] = 7  # a real difference, still reported
    (store / "left" / "spec.yaml").write_text(yaml.safe_dump(spec))
    compared = json.loads(invoke("compare", "left", "right", "--storage", str(store), "--json"))
    keys = {d["key"] for d in compared["spec"]}
    assert "trainable.fail_at" not in keys
    assert keys == {"trainable.iterations"}


def test_compare_takes_metric_and_mode_for_plain_ray_tune_folders(runs: Path) -> None:
    folder = str(next((runs / "ray").iterdir()))
    assumed = runner.invoke(app, ["compare", folder, "quad", "--storage", str(runs), "--json"])
    assert assumed.exit_code == 0, assumed.output + assumed.stderr
    assert json.loads(assumed.stdout)["left"]["best_value"] == pytest.approx(1.2)  # min of (x-1)^2 + 1/t
    warnings = [line for line in assumed.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1 and "assuming min" in warnings[0] and "--mode max" in warnings[0]

    given = runner.invoke(app, ["compare", folder, folder, "--mode", "max", "--metric", "loss", "--json"])
    assert given.exit_code == 0, given.output + given.stderr
    payload = json.loads(given.stdout)
    assert payload["left"]["mode"] == "max" and payload["left"]["best_value"] == pytest.approx(2.0)  # 1 + 1/1
    assert payload["better"] == "tie" and "assuming" not in given.stderr


def test_ls_best_and_report_accept_plain_ray_tune_folders(runs: Path, tmp_path: Path) -> None:
    rows = json.loads(invoke("ls", "--storage", str(runs / "ray"), "--json"))
    assert [(r["name"], r["kind"], r["state"], r["trials"]) for r in rows] == [
        ("plain", "ray-tune", "completed", {"completed": 4})
    ]
    assert rows[0]["metric"] == "loss" and rows[0]["best"] is None and rows[0]["duration_s"] > 0
    assert "completed (Ray Tune)" in invoke("ls", "--storage", str(runs / "ray"))
    mixed = json.loads(invoke("ls", "--storage", str(runs), "--json"))
    assert {r["name"]: r["kind"] for r in mixed} == {"boom": "raytuner", "quad": "raytuner"}  # ray/ holds no state

    best = runner.invoke(app, ["best", "plain", "--storage", str(runs / "ray"), "-f", "json", "-n", "2"])
    assert best.exit_code == 0, best.output + best.stderr
    ranked = json.loads(best.stdout)
    assert [r["loss"] for r in ranked] == pytest.approx([1.2, 1.2]) and "assuming min" in best.stderr
    top = json.loads(invoke("best", "plain", "--storage", str(runs / "ray"), "--mode", "max", "-f", "json"))
    assert top["loss"] == pytest.approx(2.0) and top["iteration"] == 1 and set(top["config"]) == {"x", "depth"}

    target = tmp_path / "plain.html"
    invoke("report", "plain", "--storage", str(runs / "ray"), "-o", str(target))
    assert "plain" in target.read_text() and "<svg" in target.read_text()
    assert f"<code>{runs / 'ray' / 'plain'}</code>" in target.read_text()  # the folder read, not a scratch copy


def _mid_run_status(folder: Path, pid: int) -> dict[str, object]:
    """status.json as a run writes it at its start (and leaves it while running): no counts,
    no best, no end; ``pid`` as its driver."""
    status = json.loads((folder / "status.json").read_text())
    status.update(
        state="running",
        ended_at=None,
        duration_s=None,
        best=None,
        trials=dict.fromkeys(status["trials"], 0),
        driver={"pid": pid, "hostname": socket.gethostname()},
    )
    (folder / "status.json").write_text(json.dumps(status))
    return status


def test_ls_reads_the_trials_table_of_a_run_still_marked_running(runs: Path, tmp_path: Path) -> None:
    finished = json.loads((runs / "quad" / "status.json").read_text())
    store = tmp_path / "store"
    shutil.copytree(runs / "quad", store / "live")
    shutil.copytree(runs / "quad", store / "dead")
    _mid_run_status(store / "live", os.getpid())  # a driver that is alive: this process
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    _mid_run_status(store / "dead", int(dead.stdout))

    import time

    before = time.time()
    rows = {r["name"]: r for r in json.loads(invoke("ls", "--storage", str(store), "--json"))}
    for row in rows.values():
        assert row["trials"] == {"completed": 3} and row["so_far"] is True
        assert row["best"] == pytest.approx(finished["best"]["value"])
    assert rows["live"]["state"] == "running"
    assert rows["live"]["duration_s"] >= before - finished["started_at"]  # up to now
    assert rows["dead"]["state"] == "crashed?"
    assert 0 < rows["dead"]["duration_s"] <= finished["duration_s"]  # up to the table's last record
    table = invoke("ls", "--storage", str(store))
    assert "3 completed" in table and "loss 0.45" in table and "s so far" in table


def _one_line_exit_2(*args: str) -> str:
    result = runner.invoke(app, list(args))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output + result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output
    return lines[0]


def test_unknown_schemes_and_unreachable_buckets_are_one_line(
    runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "no filesystem for foo://" in _one_line_exit_2("show", "foo://bucket/x")
    assert "no filesystem for foo://" in _one_line_exit_2("ls", "--storage", "foo://bucket/x")
    assert "no filesystem for foo://" in _one_line_exit_2("export", "quad", "--storage", str(runs), "-o", "foo://b/x.parquet")
    memory = _one_line_exit_2("export", "quad", "--storage", str(runs), "-o", "memory://x/y.parquet")
    assert "memory://" in memory and "gone" in memory

    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(name, value)
    nobody = f"endpoint_override=127.0.0.1:{free_port()}&scheme=http&region=us-east-1"
    bucket = f"s3://no-such-bucket-audit6/prefix?{nobody}"
    assert "cannot list s3://no-such-bucket-audit6/prefix" in _one_line_exit_2("ls", "--storage", bucket)
    assert "cannot read s3://no-such-bucket-audit6/prefix" in _one_line_exit_2("show", bucket)
    target = f"s3://no-such-bucket-audit6/out.parquet?{nobody}"
    assert "cannot write s3://no-such-bucket-audit6/out.parquet" in _one_line_exit_2(
        "export", "quad", "--storage", str(runs), "-o", target
    )


def test_ls_refuses_a_storage_that_is_no_folder(tmp_path: Path) -> None:
    assert f"no folder {tmp_path / 'missing'}" in _one_line_exit_2("ls", "--storage", str(tmp_path / "missing"))
    (tmp_path / "file").write_text("x")
    assert "is a file; expected a folder" in _one_line_exit_2("ls", "--storage", str(tmp_path / "file"))
    (tmp_path / "empty").mkdir()
    assert invoke("ls", "--storage", str(tmp_path / "empty")).startswith("no experiments under")


def test_ls_where_nothing_ran_yet_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no runs/ here: the default root, not one the user named
    assert invoke("ls").startswith(f"no experiments: no {tmp_path / 'runs'} yet")
    assert json.loads(invoke("ls", "--json")) == []


@pytest.mark.parametrize("command", ["show", "best", "export", "report"])
def test_every_reading_command_says_what_it_accepts(command: str) -> None:
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "300"})
    text = " ".join(result.stdout.replace("│", " ").split())
    assert "name (under --storage), folder, or URI (s3://...); raytuner's or plain Ray Tune's" in text
    assert "--metric" in text and "--mode" in text
