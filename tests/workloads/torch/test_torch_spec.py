"""The built-in torch workloads as a spec uses them: validation, a real run, lr-find."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from raytuner.cli import app
from raytuner.errors import SpecError
from raytuner.execution.events import Recorder
from raytuner.execution.runner import RunOptions, RunState, run_experiment
from raytuner.spec.loader import load_experiment, load_experiment_text

ROOT = Path(__file__).resolve().parents[3]

SPEC = """
name: wine
trainable: {builtin: mlp_classifier, dataset: wine, max_epochs: 4}
metric: val_accuracy
mode: max
space:
  lr: {loguniform: [1.0e-3, 3.0e-2]}
  hidden: {choice: [16, 32]}
  optimizer: {choice: [{name: sgd, momentum: {uniform: [0.8, 0.95]}}, adam]}
search: {algorithm: hyperopt, num_samples: 4, n_initial_points: 2, seed: 3}
scheduler: {type: asha, max_t: 4, grace_period: 1, reduction_factor: 2}
checkpoint: {every: 2, keep: 1}
"""


@pytest.mark.parametrize("path", sorted((ROOT / "experiments").glob("torch-*.yaml")), ids=lambda p: p.name)
def test_every_torch_example_validates(path: Path) -> None:
    experiment = load_experiment(path)
    assert experiment.spec.trainable.builtin in ("mlp_classifier", "mlp_regressor", "cnn_classifier")


@pytest.mark.parametrize(
    ("override", "where", "words"),
    [
        ("metric=accuracy", "metric", "reports train_loss"),
        ("trainable.dataset={path: missing.csv, target: y}", "trainable.dataset.path", "not found"),
        ("space.lrr=0.1", "space", "lrr"),
        ("space_preset=adamm", "space_preset", "'adamw'"),
        ("trainable.builtin=mlp_regressor", "metric", "val_rmse"),
    ],
)
def test_workload_mistakes_are_refused_at_validation(override: str, where: str, words: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_experiment_text(SPEC, "wine.yaml", [override])
    assert caught.value.location.path == where
    assert words in str(caught.value)


def test_space_preset_is_expanded_and_overridden_key_by_key() -> None:
    experiment = load_experiment_text(SPEC.replace("space:\n", "space_preset: sgd\nspace:\n"), "wine.yaml")
    space = experiment.spec.space
    assert space["lr"] == {"loguniform": [1.0e-3, 3.0e-2]}  # the spec's own key wins
    assert space["weight_decay"] == {"uniform": [0.0, 1e-4]}  # from the preset
    assert space["batch_size"]["choice"][0] == 16
    with pytest.raises(SpecError, match="torch workloads"):
        load_experiment_text("trainable: {builtin: analytic}\nmetric: loss\nmode: min\nspace_preset: adam\n", "a.yaml")


@pytest.mark.ray
@pytest.mark.slow
def test_a_torch_sweep_runs_with_checkpoints_and_parquet(ray_session: None, tmp_path: Path) -> None:
    experiment = load_experiment_text(SPEC + f"storage: {tmp_path}\n", "wine.yaml")
    summary = run_experiment(experiment, RunOptions(), Recorder())
    assert summary.state is RunState.COMPLETED
    assert len(summary.trials) == 4
    assert all(r.status.value in ("completed", "stopped") for r in summary.trials.values())
    assert summary.book.best is not None and summary.book.best.value > 0.8
    results = pq.read_table(summary.folder / "results.parquet").to_pandas()
    assert {"train_loss", "val_loss", "val_accuracy", "epoch", "lr"} <= set(results.columns)
    assert (results["epoch"] == results["training_iteration"]).all()
    finished = [r for r in summary.trials.values() if r.iterations == 4]
    assert finished and all(list(Path(r.trial_dir or "").glob("checkpoint_*")) for r in finished)


def test_lr_find_suggests_a_rate_and_draws_it(tmp_path: Path) -> None:
    spec = tmp_path / "wine.yaml"
    spec.write_text(SPEC)
    plot = tmp_path / "lr.svg"
    result = CliRunner().invoke(app, ["lr-find", str(spec), "--steps", "40", "--plot", str(plot), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert 1e-6 <= payload["suggested_lr"] <= 10
    assert len(payload["lrs"]) == len(payload["losses"]) >= 5
    svg = plot.read_text()
    assert "<polyline" in svg and "suggested" in svg
    refused = CliRunner().invoke(app, ["lr-find", str(ROOT / "experiments" / "quickstart.yaml")])
    assert refused.exit_code == 2 and "torch workload" in refused.stderr
