"""raytuner refit after searches on the Ray backend: own code as one Ray trial, a built-in
workload as one Ray task with a trial's resources, into a folder or a bucket."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

import raytuner

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def _train(config: dict[str, Any]) -> None:
    from ray import tune

    for step in range(1, config["steps"] + 1):
        with tempfile.TemporaryDirectory() as folder:
            Path(folder, "step.txt").write_text(f"{step} {os.getpid()}")
            tune.report({"loss": (config["x"] - 0.3) ** 2 + 1 / step}, checkpoint=tune.Checkpoint.from_directory(folder))


def test_refit_of_a_trainable_object_runs_one_ray_trial(ray_session: None, tmp_path: Path) -> None:
    experiment = raytuner.run(
        {
            "name": "own-ray",
            "storage": str(tmp_path / "runs"),
            "trainable": {"function": _train},
            "metric": "loss",
            "mode": "min",
            "space": {"x": {"uniform": [0.0, 1.0]}, "steps": 2},
            "search": {"algorithm": "random", "num_samples": 2, "seed": 4},
        },
        progress=False,
    )
    summary = experiment.refit(overrides=["space.steps=3"])
    assert summary.checkpoint is not None and summary.epochs == 3
    step, pid = (summary.checkpoint / "step.txt").read_text().split()
    assert step == "3" and int(pid) != os.getpid()  # a Ray worker wrote it
    assert json.loads((summary.folder / "metrics.json").read_text())["search"]["trial_id"] == experiment.best()[0].trial_id


def test_a_ray_kfold_search_records_its_test_split_and_refits(ray_session: None, tmp_path: Path) -> None:
    experiment = raytuner.run(
        {
            "name": "wine-ray",
            "storage": str(tmp_path / "runs"),
            "trainable": {
                "builtin": "mlp_classifier",
                "dataset": "wine",
                "max_epochs": 2,
                "validation": {"folds": 3},
                "test_fraction": 0.2,
            },
            "metric": "val_accuracy",
            "mode": "max",
            "space": {"lr": 0.01, "hidden": 16},
            "search": {"algorithm": "random", "num_samples": 1, "seed": 0},
            "checkpoint": {"every": 0},
        },
        progress=False,
    )
    assert json.loads((Path(experiment.folder) / "test_split.json").read_text())["rows"] == 36
    summary = experiment.refit()
    assert (summary.train_rows, summary.test_rows) == (142, 36) and "test_accuracy" in summary.test


@pytest.fixture(scope="module")
def wine_on_ray(ray_session: None, tmp_path_factory: pytest.TempPathFactory) -> raytuner.Experiment:
    return raytuner.run(
        {
            "name": "wine-task",
            "storage": str(tmp_path_factory.mktemp("runs")),
            "trainable": {"builtin": "mlp_classifier", "dataset": "wine", "max_epochs": 3, "test_fraction": 0.2},
            "metric": "val_accuracy",
            "mode": "max",
            "space": {"lr": {"loguniform": [3e-3, 3e-2]}, "hidden": 16},
            "search": {"algorithm": "random", "num_samples": 2, "seed": 3},
            "resources": {"cpu": 1},
            "checkpoint": {"every": 0},
        },
        progress=False,
    )


def test_refit_of_a_builtin_workload_runs_as_a_ray_task_with_a_trials_resources(
    wine_on_ray: raytuner.Experiment,
) -> None:
    from raytuner.final.refit_table import read_refit_row
    from raytuner.results.folder import Folder

    ranked, trials = wine_on_ray.best(), wine_on_ray.trials()
    epochs: list[dict[str, float]] = []
    summary = wine_on_ray.refit(epochs=4, on_epoch=epochs.append)
    folder = Path(wine_on_ray.folder)
    metrics = json.loads((folder / "refit" / "metrics.json").read_text())
    assert metrics["ran"]["backend"] == "ray" and metrics["ran"]["pid"] != os.getpid()  # a Ray worker trained it
    assert metrics["ran"]["resources"] == {"CPU": 1.0}  # the trial's resources, as Ray assigned them
    assert sorted(path.name for path in (folder / "refit").iterdir()) == ["metrics.json", "model.json", "model.pt"]
    assert [int(m["epoch"]) for m in epochs] == [1, 2, 3, 4] and "test_accuracy" in epochs[-1]  # progress, streamed
    row = read_refit_row(Folder.local(folder))
    assert row is not None and (row.trial_id, row.epochs, row.backend) == (ranked[0].trial_id, 4, "ray")
    assert row.search_value == ranked[0].values["val_accuracy"] and row.config == {"lr": ranked[0].config["lr"], "hidden": 16}
    assert row.test_metric == "test_accuracy" and row.test_value == summary.test["test_accuracy"] == epochs[-1]["test_accuracy"]
    assert (row.train_rows, row.test_rows, row.model) == (142, 36, str(folder / "refit"))
    again = raytuner.open(wine_on_ray.folder)  # nothing that ranks trials sees the refit
    assert again.best() == ranked and again.trials().equals(trials)
    here = wine_on_ray.refit(epochs=1, inline=True)  # --inline: in this process
    assert here.epochs == 1 and json.loads((folder / "refit" / "metrics.json").read_text())["ran"]["pid"] == os.getpid()


def test_refit_of_an_experiment_in_a_bucket_writes_the_model_and_its_row_there(
    wine_on_ray: raytuner.Experiment, s3_server: Any, tmp_path: Path
) -> None:
    import pyarrow.fs as pafs

    from raytuner.final.refit_table import read_refit_row
    from raytuner.results.folder import Folder

    s3 = s3_server.client()
    s3.create_dir("refitbucket")
    pafs.copy_files(
        wine_on_ray.folder, "refitbucket/runs/wine", source_filesystem=pafs.LocalFileSystem(), destination_filesystem=s3
    )
    if s3.get_file_info("refitbucket/runs/wine/refit.parquet").type == pafs.FileType.File:  # the test above's refit
        s3.delete_dir("refitbucket/runs/wine/refit")
        s3.delete_file("refitbucket/runs/wine/refit.parquet")
    uri = "s3://refitbucket/runs/wine"
    with pytest.MonkeyPatch.context() as env:
        for key, value in s3_server.env.items():
            env.setenv(key, value)
        env.setenv("RAYTUNER_CACHE", str(tmp_path / "cache"))
        summary = raytuner.open(uri).refit(epochs=2)
        assert summary.location == uri + "/refit"
        names = {info.base_name for info in s3.get_file_info(pafs.FileSelector("refitbucket/runs/wine/refit"))}
        assert names == {"metrics.json", "model.json", "model.pt"}
        row = read_refit_row(Folder.parse(uri))
        assert row is not None and row.model == uri + "/refit" and row.epochs == 2 and row.backend == "ray"
        assert raytuner.open(uri).best() == wine_on_ray.best()
        features = json.loads(s3.open_input_stream("refitbucket/runs/wine/refit/model.json").read())["features"]
        table = tmp_path / "rows.csv"
        table.write_text(",".join(features) + "\n" + ",".join("1" for _ in features) + "\n")
        assert raytuner.predict(uri, table, tmp_path / "out.csv") == 1  # a fresh working copy fetches refit/


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


@pytest.mark.gpu
@pytest.mark.subprocess
@pytest.mark.skipif(not _cuda(), reason="needs CUDA")
def test_refit_of_a_gpu_experiment_trains_on_a_gpu_of_the_task(tmp_path: Path) -> None:
    import subprocess
    import sys

    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: digits-gpu-refit\n"
        "trainable: {builtin: mlp_classifier, dataset: digits, max_epochs: 2, test_fraction: 0.2}\n"
        "metric: val_accuracy\nmode: max\nspace: {lr: 0.01, hidden: 64}\n"
        "search: {algorithm: random, num_samples: 1}\n"
        f"resources: {{cpu: 1, gpu: 0.5}}\nstorage: {tmp_path / 'runs'}\ncheckpoint: {{every: 0}}\n"
    )
    raytuner_command = str(Path(sys.executable).parent / "raytuner")
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    env["RAY_TMPDIR"] = str(tmp_path / "ray")
    for args in (["run", str(spec), "--json"], ["refit", str(tmp_path / "runs" / "digits-gpu-refit"), "--json"]):
        done = subprocess.run([raytuner_command, *args], capture_output=True, text=True, env=env, timeout=400)
        assert done.returncode == 0, done.stderr[-3000:]
    ran = json.loads((tmp_path / "runs" / "digits-gpu-refit" / "refit" / "metrics.json").read_text())["ran"]
    assert ran["device"].startswith("cuda") and ran["resources"]["GPU"] == 0.5 and ran["pid"] != os.getpid()
