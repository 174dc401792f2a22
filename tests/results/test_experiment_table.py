"""``experiment.parquet``: written before the first trial, rewritten at the end and by extend."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from raytuner.execution.environment import environment_facts
from raytuner.execution.events import Event, EventKind
from raytuner.execution.runner import RunOptions, RunState, extend_experiment, run_experiment
from raytuner.results import layout
from raytuner.results.experiment_table import experiment_schema, write_experiment_table
from raytuner.results.records import ExperimentBook
from raytuner.results.store import write_json_atomic
from raytuner.spec.loader import load_experiment_text

SPEC = """
name: table
trainable: {builtin: analytic, iterations: 3}
metric: loss
mode: min
space: {x: {uniform: [-1, 1]}, act: {choice: [relu, tanh]}}
search: {num_samples: 2, seed: 11}
"""


def _row(folder: Path) -> dict[str, Any]:
    table = pq.read_table(folder / layout.EXPERIMENT)
    assert table.num_rows == 1
    row: dict[str, Any] = table.to_pylist()[0]
    return row


def test_the_row_holds_the_spec_its_state_and_the_environment_facts(tmp_path: Path) -> None:
    experiment = load_experiment_text(SPEC + f"storage: {tmp_path}\n", "table.yaml")
    folder = tmp_path / "table"
    folder.mkdir()
    write_json_atomic(folder / layout.ENVIRONMENT, environment_facts(experiment))
    started = time.time()
    write_experiment_table(folder, experiment, "running", started)

    table = pq.read_table(folder / layout.EXPERIMENT)
    assert table.schema.equals(experiment_schema("loss", "min"), check_metadata=True)
    assert table.schema.metadata[b"raytuner.schema_version"] == b"1"
    types = {field.name: field.type for field in table.schema}
    assert types["started_at"] == pa.timestamp("ms", tz="UTC") and types["git_dirty"] == pa.bool_()
    assert types["seed"] == pa.int64() and types["gpu_names"].value_type == pa.string()
    row = table.to_pylist()[0]
    assert (row["name"], row["folder"], row["status"], row["ended_at"]) == ("table", "table", "running", None)
    assert abs(row["started_at"].timestamp() - started) < 0.001
    assert (row["metric"], row["mode"], row["algorithm"], row["scheduler"]) == ("loss", "min", "auto", "fifo")
    assert (row["seed"], row["num_samples"]) == (11, 2)
    assert yaml.safe_load(row["spec_yaml"]) == json.loads(row["spec_json"]) == experiment.resolved()
    assert row["python_version"] == platform.python_version() and row["cpu_count"] == os.cpu_count()
    assert row["pyarrow_version"] == pa.__version__ and row["ray_version"].startswith("2.")
    assert row["memory_bytes"] > 2**20 and row["gpu_count"] >= 0
    assert row["working_dir"] == os.getcwd() and row["command"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    assert row["git_commit"] == (head.stdout.strip() if head.returncode == 0 else None)

    write_experiment_table(folder, experiment, "failed", started, started + 5, "RuntimeError: out of luck")
    row = _row(folder)
    assert (row["status"], row["error"]) == ("failed", "RuntimeError: out of luck")
    assert row["ended_at"].timestamp() == pytest.approx(started + 5, abs=0.001)
    assert sorted(p.name for p in folder.iterdir()) == [layout.ENVIRONMENT, layout.EXPERIMENT]  # no .tmp left


def test_a_folder_without_environment_facts_still_gets_its_row(tmp_path: Path) -> None:
    experiment = load_experiment_text(SPEC, "table.yaml")
    write_experiment_table(tmp_path, experiment, "completed", 0.0, 1.0)
    row = _row(tmp_path)
    assert row["status"] == "completed" and row["num_samples"] == 2
    assert row["hostname"] is None and row["git_commit"] is None and row["gpu_count"] is None


class _TableWatcher:
    """At each trial's start, what ``experiment.parquet`` says (it must exist before any trial)."""

    def __init__(self) -> None:
        self.folder = ""
        self.seen: list[tuple[str, int]] = []

    def handle(self, event: Event, book: ExperimentBook) -> None:
        if event.kind is EventKind.TRIAL_STARTED:
            row = _row(Path(self.folder))
            self.seen.append((row["status"], row["num_samples"]))
        elif event.kind is EventKind.EXPERIMENT_STARTED:
            self.folder = event.data["folder"]


@pytest.mark.ray
@pytest.mark.slow
def test_a_run_writes_it_before_any_trial_and_extend_keeps_it_true(ray_session: None, storage: Path) -> None:
    watcher = _TableWatcher()
    summary = run_experiment(load_experiment_text(SPEC + f"storage: {storage}\n"), RunOptions(), watcher)
    assert summary.state is RunState.COMPLETED
    assert watcher.seen == [("running", 2), ("running", 2)]
    first = _row(summary.folder)
    assert first["status"] == "completed" and first["ended_at"] >= first["started_at"]
    facts = json.loads((summary.folder / layout.ENVIRONMENT).read_text())
    assert first["hostname"] == facts["hostname"] and first["git_dirty"] == (facts["git"] or {}).get("dirty")

    watcher = _TableWatcher()
    extended = extend_experiment(summary.folder, 1, RunOptions(), watcher)
    assert extended.state is RunState.COMPLETED
    assert watcher.seen == [("running", 3)]  # the widened spec, while the extension runs
    row = _row(summary.folder)
    assert (row["status"], row["num_samples"]) == ("completed", 3)
    assert row["started_at"] == first["started_at"] and row["ended_at"] >= first["ended_at"]
    assert yaml.safe_load(row["spec_yaml"])["search"]["num_samples"] == 3
    assert row["hostname"] == first["hostname"] and row["spec_yaml"] != first["spec_yaml"]


def test_a_run_without_a_seed_records_the_one_drawn_and_it_repeats_the_run(ray_session: None, storage: Path) -> None:
    from raytuner.execution.events import Recorder

    unseeded = SPEC.replace("search: {num_samples: 2, seed: 11}", "search: {algorithm: random, num_samples: 3}")
    unseeded = unseeded.replace("name: table", "name: drawn") + f"storage: {storage}\n"
    first = run_experiment(load_experiment_text(unseeded), RunOptions(), Recorder())
    seed = _row(first.folder)["seed"]
    assert isinstance(seed, int)
    assert yaml.safe_load((first.folder / layout.SPEC).read_text())["search"]["seed"] == seed
    assert json.loads((first.folder / layout.ENVIRONMENT).read_text())["seed"] == seed

    again = unseeded.replace("num_samples: 3}", f"num_samples: 3, seed: {seed}}}")
    second = run_experiment(load_experiment_text(again), RunOptions(), Recorder())
    configs = [sorted(pq.read_table(run.folder / layout.TRIALS).column("config_json").to_pylist()) for run in (first, second)]
    assert configs[0] == configs[1] and len(configs[0]) == 3
