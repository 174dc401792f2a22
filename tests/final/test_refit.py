"""raytuner refit on a real search: the test split, the final model, its scores and files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import raytuner
from raytuner.cli import app
from raytuner.final.refit import refit_experiment
from raytuner.spec.torch_options import OPTIONS_BY_BUILTIN
from raytuner.workloads.torch.datasets import load_table, make_folds
from raytuner.workloads.torch.refit import train_final

pytestmark = pytest.mark.slow

WINE_ROWS, WINE_TEST = 178, 36


def wine_spec(storage: Path, validation: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "wine-refit",
        "storage": str(storage),
        "trainable": {
            "builtin": "mlp_classifier",
            "dataset": "wine",
            "max_epochs": 5,
            "validation": validation,
            "test_fraction": 0.2,
            "seed": 1,
        },
        "metric": "val_accuracy",
        "mode": "max",
        "space": {"lr": {"loguniform": [3e-3, 3e-2]}, "hidden": {"choice": [16, 32]}, "batch_size": 32},
        # one trial at a time: inline trials in threads of one process share torch's global random state
        "search": {"algorithm": "random", "num_samples": 2, "seed": 5, "max_concurrent": 1},
        "resources": {"cpu": 1},
        "checkpoint": {"every": 0},
    }


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> raytuner.Experiment:
    storage = tmp_path_factory.mktemp("runs")
    return raytuner.run(wine_spec(storage, {"fraction": 0.25}), inline=True, progress=False)


def test_run_records_its_test_split(searched: raytuner.Experiment) -> None:
    record = json.loads((Path(searched.folder) / "test_split.json").read_text())
    assert record["rows"] == WINE_TEST and record["of_rows"] == WINE_ROWS and len(record["row_numbers"]) == WINE_TEST


def test_refit_reproduces_the_best_trials_score_on_the_same_data(searched: raytuner.Experiment) -> None:
    best = searched.best()[0]
    spec = searched.spec
    assert spec is not None and best.iteration is not None
    options = OPTIONS_BY_BUILTIN["mlp_classifier"].model_validate(spec["trainable"])
    fold = make_folds(load_table(options), options)[0]  # the trial's own training and validation rows
    _, curve = train_final(options, best.config, fold, best.iteration)
    assert len(curve) == best.iteration
    assert abs(curve[-1]["val_accuracy"] - best.values["val_accuracy"]) <= 0.03


def test_refit_writes_model_and_scores(searched: raytuner.Experiment) -> None:
    best = searched.best()[0]
    summary = refit_experiment(searched.folder)
    assert summary.trial_id == best.trial_id and summary.epochs == best.iteration
    assert (summary.train_rows, summary.test_rows) == (WINE_ROWS - WINE_TEST, WINE_TEST)
    assert {path.name for path in summary.folder.iterdir()} == {"model.json", "model.pt", "metrics.json"}
    metrics = json.loads((summary.folder / "metrics.json").read_text())
    assert metrics["search"]["val_accuracy"] == pytest.approx(best.values["val_accuracy"])
    assert 0.0 <= metrics["refit"]["test_accuracy"] <= 1.0 and len(metrics["curve"]) == summary.epochs
    model = json.loads((summary.folder / "model.json").read_text())
    assert model["labels"] == ["class_0", "class_1", "class_2"] and len(model["features"]) == 13
    assert model["config"]["hidden"] == best.config["hidden"]


def test_the_report_shows_the_final_model_next_to_the_search(searched: raytuner.Experiment) -> None:
    import shutil

    from raytuner.results.report import ChartKind

    shutil.rmtree(Path(searched.folder) / "refit", ignore_errors=True)  # another test of the module may have refit
    assert ChartKind.FINAL_MODEL not in {s.kind for s in searched.write_report(Path(searched.folder) / "before.html").sections}
    summary = refit_experiment(searched.folder)
    result = searched.write_report(Path(searched.folder) / "after.html")
    (final,) = [s for s in result.drawn if s.kind is ChartKind.FINAL_MODEL]
    metrics = json.loads((summary.folder / "metrics.json").read_text())
    html = result.html.read_text()
    assert "Final model" in html and f"test_accuracy {metrics['refit']['test_accuracy']:.4g}" in final.caption
    assert f"{metrics['search']['val_accuracy']:.4g}" in final.table_html
    assert final.svg.count("<circle") >= summary.epochs  # a point per epoch of the refit's test curve


def test_refit_command_takes_epochs_and_refuses_bad_ones(searched: raytuner.Experiment) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["refit", searched.folder, "--epochs", "2", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["epochs"] == 2
    bad = runner.invoke(app, ["refit", searched.folder, "--epochs", "many"])
    assert bad.exit_code == 2 and bad.stderr.strip().splitlines() == [
        "error: --epochs takes best or a positive whole number, found 'many'"
    ]


def test_refit_of_a_kfold_search_trains_on_every_fold(tmp_path: Path) -> None:
    spec = wine_spec(tmp_path, {"folds": 3})
    spec["trainable"]["max_epochs"] = 2
    spec["search"]["num_samples"] = 1
    experiment = raytuner.run(spec, inline=True, progress=False)
    summary = refit_experiment(experiment.folder, epochs=1)
    assert (summary.train_rows, summary.test_rows, summary.epochs) == (WINE_ROWS - WINE_TEST, WINE_TEST, 1)


def test_refit_refuses_another_test_split(searched: raytuner.Experiment) -> None:
    result = CliRunner().invoke(app, ["refit", searched.folder, "--set", "trainable.seed=2"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {Path(searched.folder).name}: the test split is not the one the search left out "
        f"({Path(searched.folder) / 'test_split.json'}): the dataset, the test file, trainable.test_fraction "
        "or trainable.seed changed"
    ]
