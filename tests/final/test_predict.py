"""raytuner predict: a refit model on a table, through the model's own preprocessing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import raytuner
from raytuner.cli import app
from raytuner.final.refit import refit_experiment

RAYTUNER = str(Path(sys.executable).parent / "raytuner")

pytestmark = pytest.mark.slow

LABELS = ["cat", "dog", "bird"]


def _write_csv(path: Path, rows: int, seed: int, *, extra: bool = False) -> None:
    """Three separable clusters labelled by name; columns in a different order than the spec lists none."""
    rng = np.random.default_rng(seed)
    centers = {"cat": (0.0, 40.0), "dog": (6.0, 80.0), "bird": (-6.0, 120.0)}
    with open(path, "w") as out:
        out.write("width,label,height" + (",note" if extra else "") + "\n")
        for index in range(rows):
            label = LABELS[index % 3]
            width, height = centers[label][0] + rng.normal(), centers[label][1] + 5 * rng.normal()
            out.write(f"{width:.5f},{label},{height:.5f}" + (",x" if extra else "") + "\n")


@pytest.fixture(scope="module")
def refit_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("animals")
    _write_csv(root / "train.csv", 120, 0)
    _write_csv(root / "test.csv", 30, 1)
    spec: dict[str, Any] = {
        "name": "animals",
        "storage": str(root / "runs"),
        "trainable": {
            "builtin": "mlp_classifier",
            "dataset": {"path": str(root / "train.csv"), "target": "label"},
            "test_path": str(root / "test.csv"),
            "max_epochs": 8,
        },
        "metric": "val_accuracy",
        "mode": "max",
        "space": {"lr": 0.01, "hidden": 16, "batch_size": 16},
        "search": {"algorithm": "random", "num_samples": 1, "seed": 0},
        "resources": {"cpu": 1},
        "checkpoint": {"every": 0},
    }
    experiment = raytuner.run(spec, inline=True, progress=False)
    return refit_experiment(experiment.folder, epochs=8).folder


def test_predict_gives_string_labels_back_with_the_refit_score(refit_folder: Path, tmp_path: Path) -> None:
    test = refit_folder.parents[2] / "test.csv"
    out = tmp_path / "predictions.csv"
    result = CliRunner().invoke(app, ["predict", str(refit_folder), str(test), "-o", str(out)])
    assert result.exit_code == 0, result.output
    predicted = pacsv.read_csv(out).to_pydict()
    truth = pacsv.read_csv(test).column("label").to_pylist()
    assert set(predicted["prediction"]) <= set(LABELS) and len(predicted["prediction"]) == len(truth)
    assert [name for name in predicted if name.startswith("probability_")] == [f"probability_{x}" for x in sorted(LABELS)]
    accuracy = float(np.mean([p == t for p, t in zip(predicted["prediction"], truth, strict=True)]))
    metrics = json.loads((refit_folder / "metrics.json").read_text())
    assert accuracy == pytest.approx(metrics["refit"]["test_accuracy"])  # the same preprocessing as the refit
    assert accuracy >= 0.9


def test_predict_by_experiment_name_to_parquet(refit_folder: Path, tmp_path: Path) -> None:
    experiment = refit_folder.parent
    table = tmp_path / "rows.csv"
    shutil.copy(refit_folder.parents[2] / "test.csv", table)
    out = tmp_path / "out.parquet"
    result = CliRunner().invoke(
        app, ["predict", experiment.name, str(table), "-o", str(out), "--storage", str(experiment.parent)]
    )
    assert result.exit_code == 0, result.output
    probabilities = pq.read_table(out).drop(["prediction"]).to_pandas().to_numpy()
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ("missing", "missing feature column(s) height; the model takes width, height"),
        ("extra", "column(s) note are not features of the model; it takes width, height (and ignores label)"),
        ("none", "no rows to predict (the table has its columns and nothing else)"),
    ],
)
def test_predict_refuses_columns_in_one_line(refit_folder: Path, tmp_path: Path, columns: str, message: str) -> None:
    table = tmp_path / "rows.csv"
    if columns == "missing":
        table.write_text("width,label\n1.0,cat\n")
    elif columns == "none":  # it said "feature column 'width' is not numeric (type null)"
        table.write_text("width,height\n")
    else:
        _write_csv(table, 3, 2, extra=True)
    result = CliRunner().invoke(app, ["predict", str(refit_folder), str(table), "-o", str(tmp_path / "o.csv")])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"error: {table}: {message}"]


def test_an_output_or_model_predict_cannot_use_is_one_line_and_leaves_nothing(refit_folder: Path, tmp_path: Path) -> None:
    import shutil

    table = tmp_path / "rows.csv"
    _write_csv(table, 3, 2)
    (tmp_path / "dir.csv").mkdir()
    damaged = tmp_path / "damaged"
    shutil.copytree(refit_folder, damaged)
    (damaged / "model.pt").write_bytes(b"not torch")
    cases = [
        ([str(refit_folder), str(table), "-o", str(tmp_path / "dir.csv")], "it is a folder"),
        ([str(refit_folder), str(table), "-o", "/proc/raytuner-predict.csv"], "cannot write /proc/raytuner-predict.csv"),
        ([str(damaged), str(table), "-o", str(tmp_path / "o.csv")], "the refit folder is damaged: run raytuner refit again"),
    ]
    for argv, message in cases:
        result = CliRunner().invoke(app, ["predict", *argv])
        assert result.exit_code == 2, (argv, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (argv, result.stderr)
    (damaged / "model.json").write_text("{cut")
    result = CliRunner().invoke(app, ["predict", str(damaged), str(table), "-o", str(tmp_path / "o.csv")])
    assert result.exit_code == 2 and "model.json: unreadable" in result.stderr
    assert not (tmp_path / "o.csv").exists() and not list(tmp_path.glob("*.tmp"))


@pytest.mark.subprocess
def test_predict_command_without_a_model(tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text("a\n1\n")
    result = subprocess.run(
        [RAYTUNER, "predict", str(tmp_path), str(tmp_path / "rows.csv"), "-o", str(tmp_path / "o.csv")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "error:" in result.stderr
    assert "Traceback" not in result.stderr


def test_regression_predictions_reproduce_the_refit_score(tmp_path: Path) -> None:
    from raytuner.spec.torch_options import MlpRegressorTrainable
    from raytuner.workloads.torch.datasets import load_test_table
    from raytuner.workloads.torch.final_model import FinalModel

    trainable = {"builtin": "mlp_regressor", "dataset": "diabetes", "max_epochs": 3, "test_fraction": 0.2}
    spec: dict[str, Any] = {
        "name": "diabetes",
        "storage": str(tmp_path),
        "trainable": trainable,
        "metric": "val_rmse",
        "mode": "min",
        "space": {"lr": 0.01, "hidden": 16},
        "search": {"algorithm": "random", "num_samples": 1, "seed": 0},
        "checkpoint": {"every": 0},
    }
    summary = refit_experiment(raytuner.run(spec, inline=True, progress=False).folder)
    test = load_test_table(MlpRegressorTrainable.model_validate(trainable))
    assert test is not None
    values = np.asarray(FinalModel.load(summary.folder).predict(summary.folder, test.x)["prediction"])
    rmse = float(np.sqrt(np.mean((values - test.y) ** 2)))
    assert rmse == pytest.approx(summary.test["test_rmse"], rel=1e-4)
