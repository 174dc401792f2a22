"""execution.loggers: Ray's TensorBoard files, MLflow runs and W&B offline runs, read back after a real run."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from raytuner.errors import SpecError
from raytuner.execution.events import Recorder
from raytuner.execution.runner import RunOptions, RunState, run_experiment
from raytuner.spec.loader import load_experiment_text

SPEC = """
name: tracked
trainable: {function: "user_trainables:quadratic"}
metric: loss
mode: min
space: {x: {grid: [0.0, 2.5]}}
search: {algorithm: grid}
"""


@pytest.mark.ray
@pytest.mark.slow
def test_tensorboard_mlflow_and_wandb_offline_record_every_report(
    ray_session: None, storage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mlflow")
    pytest.importorskip("wandb")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # raytuner sets it for a file store; restored after
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_DIR", raising=False)
    text = SPEC + (
        f"storage: {storage}\n"
        "execution:\n"
        "  loggers: [tensorboard, mlflow, wandb]\n"
        "  mlflow: {experiment_name: tracked-mlflow}\n"
        "  wandb: {project: tracked-wandb, mode: offline}\n"
    )
    summary = run_experiment(load_experiment_text(text), RunOptions(), Recorder())
    assert summary.state is RunState.COMPLETED
    # MLflow's setup points MLFLOW_TRACKING_URI at this run's store; a next run in this process must not inherit it
    assert "MLFLOW_TRACKING_URI" not in os.environ
    reports = pq.read_table(summary.folder / "results.parquet").to_pylist()
    trials = pq.read_table(summary.folder / "trials.parquet").to_pylist()
    assert len(reports) == 10

    for trial in trials:  # TensorBoard: Ray's TBX logger writes an events file per trial
        events = list(Path(trial["trial_dir"]).glob("events.out.tfevents.*"))
        assert events and events[0].stat().st_size > 0

    client = MlflowClient((summary.folder / "mlruns").as_uri())  # the default: inside the experiment folder
    experiment = client.get_experiment_by_name("tracked-mlflow")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(float(run.data.params["x"]) for run in runs) == [0.0, 2.5]
    for run in runs:
        x = float(run.data.params["x"])
        logged = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "loss"))
        expected = sorted((r["training_iteration"], r["loss"]) for r in reports if _trial_x(trials, r["trial_id"]) == x)
        assert [step for step, _ in logged] == [step for step, _ in expected] == [1, 2, 3, 4, 5]
        assert [value for _, value in logged] == pytest.approx([value for _, value in expected])

    for trial in trials:  # W&B offline: one run folder per trial, named by the trial id, in the experiment folder
        offline = list(summary.folder.glob(f"wandb/offline-run-*-{trial['trial_id']}/run-{trial['trial_id']}.wandb"))
        assert len(offline) == 1
        assert offline[0].read_bytes().count(b"loss") >= 5  # a history record per report (protobuf keeps keys as text)


def _trial_x(trials: list[dict[str, object]], trial_id: str) -> object:
    return next(t["config/x"] for t in trials if t["trial_id"] == trial_id)


def test_a_tracker_without_its_package_is_refused_at_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(SpecError, match=r"mlflow needs the mlflow package: pip install 'raytuner\[mlflow\]'"):
        load_experiment_text(SPEC + "execution: {loggers: [tensorboard, mlflow]}\n")


def test_tracker_settings_without_the_logger_are_refused() -> None:
    with pytest.raises(SpecError, match="wandb: settings given, but loggers does not include 'wandb'"):
        load_experiment_text(SPEC + "execution: {loggers: [csv], wandb: {mode: offline}}\n")
    with pytest.raises(SpecError, match="unknown key .tracking_url.; did you mean .tracking_uri."):
        load_experiment_text(SPEC + "execution: {loggers: [mlflow], mlflow: {tracking_url: file:///tmp}}\n")
