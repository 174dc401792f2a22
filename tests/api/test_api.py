"""The Python API on the inline backend: real runs in this process, real Parquet read back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from ray import tune

import raytuner

ROOT = Path(__file__).resolve().parents[2]


def quadratic_spec(train: Any, storage: Path, **extra: Any) -> dict[str, Any]:
    return {
        "name": "quad",
        "storage": str(storage),
        "trainable": {"function": train},
        "metric": "loss",
        "mode": "min",
        "space": {"x": {"uniform": [-2.0, 2.0]}, "opt": {"lr": {"loguniform": [1e-4, 1e-1]}, "kind": "adam"}},
        "search": {"algorithm": "random", "num_samples": 4, "seed": 3},
        **extra,
    }


def test_import_raytuner_loads_no_heavy_library() -> None:
    code = (
        "import sys, raytuner; raytuner.run; raytuner.open; raytuner.Experiment; raytuner.SpecError; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'ray', 'torch', 'pyarrow', 'hyperopt', 'optuna'}))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_a_function_defined_in_the_test_runs_inline_and_its_best_config_is_reusable(tmp_path: Path) -> None:
    def train(config: dict[str, Any]) -> None:  # not importable by any name
        for t in range(1, 4):
            tune.report({"loss": (config["x"] - 1.0) ** 2 + config["opt"]["lr"] + 1.0 / t, "other": t})

    experiment = raytuner.run(quadratic_spec(train, tmp_path / "runs"), inline=True, progress=False)

    assert experiment.state == "completed" and experiment.name == "quad"
    assert Path(experiment.folder) == tmp_path / "runs" / "quad"
    saved = yaml.safe_load((Path(experiment.folder) / "spec.yaml").read_text())
    assert saved["trainable"]["function"].startswith("<object test_api.") and "train>" in saved["trainable"]["function"]
    trials = experiment.trials().to_pandas()
    assert len(trials) == 4 and set(trials["status"]) == {"completed"}
    results = experiment.results().to_pandas()
    assert len(results) == 12 and set(results["trial_id"]) == set(trials["trial_id"])
    best = experiment.best(2)
    assert [t.values["loss"] for t in best] == sorted(trials["metric_best"])[:2]
    top = best[0]
    assert top.status == "completed" and top.iteration == 3
    assert set(top.config) == {"x", "opt"} and top.config["opt"]["kind"] == "adam"  # nested, as the trainable saw it

    # the best config as a constant space gives the same value again
    again = raytuner.run(
        {**quadratic_spec(train, tmp_path / "runs"), "name": "again", "space": top.config, "search": {"num_samples": 1}},
        inline=True,
        progress=False,
    )
    assert again.best()[0].values["loss"] == pytest.approx(top.values["loss"])
    assert again.best()[0].config == top.config


def test_a_trainable_class_object_runs_and_the_experiment_is_extended(tmp_path: Path) -> None:
    class Counter(tune.Trainable):
        def setup(self, config: dict[str, Any]) -> None:
            self.x = config["x"]
            self.step_count = 0

        def step(self) -> dict[str, Any]:
            self.step_count += 1
            return {"loss": abs(self.x) + 1.0 / self.step_count, "done": self.step_count >= 2}

    spec = quadratic_spec(Counter, tmp_path / "runs", space={"x": {"uniform": [-1.0, 1.0]}})
    spec["search"] = {"algorithm": "random", "num_samples": 2, "seed": 1}
    experiment = raytuner.run(spec, inline=True, progress=False)
    assert experiment.trials().num_rows == 2 and experiment.best()[0].iteration == 2

    wider = experiment.extend(1, progress=False)  # the run remembers its class
    assert wider.state == "completed" and wider.trials().num_rows == 3

    # opened anew, the object must be given again; without it, one clear SpecError
    with pytest.raises(raytuner.SpecError, match=r"trainable\.function: the trainable <object .*Counter> was a Python object"):
        raytuner.open("quad", storage=str(tmp_path / "runs")).extend(1, progress=False)
    again = raytuner.open("quad", storage=str(tmp_path / "runs")).extend(1, trainable=Counter, progress=False)
    assert again.trials().num_rows == 4


def test_an_interrupted_run_resumes_from_python(tmp_path: Path) -> None:
    interrupted: list[bool] = []

    def train(config: dict[str, Any]) -> None:
        for t in range(1, 4):
            if not interrupted and t == 2:
                interrupted.append(True)
                os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C: the run stops at the next report
            tune.report({"loss": config["x"] ** 2 + 1.0 / t})

    spec = quadratic_spec(train, tmp_path / "runs", space={"x": {"uniform": [-1.0, 1.0]}})
    spec["search"] = {"algorithm": "random", "num_samples": 3, "seed": 2, "max_concurrent": 1}
    experiment = raytuner.run(spec, inline=True, progress=False)
    assert experiment.state == "interrupted"
    assert experiment.trials().num_rows < 3 or "completed" not in set(experiment.trials().column("status").to_pylist())

    resumed = experiment.resume(progress=False)
    assert resumed.state == "completed"
    trials = resumed.trials().to_pandas()
    assert len(trials) == 3 and set(trials["status"]) == {"completed"}
    per_trial = resumed.results().to_pandas().groupby("trial_id")["training_iteration"].apply(sorted)
    assert all(list(its) == [1, 2, 3] for its in per_trial), per_trial.to_dict()


def test_a_bad_value_in_a_dict_spec_raises_spec_error_with_its_key_path(tmp_path: Path) -> None:
    spec = quadratic_spec(lambda config: None, tmp_path / "runs")
    spec["search"] = {"algorithm": "random", "num_samples": 0}
    with pytest.raises(raytuner.SpecError) as caught:
        raytuner.run(spec, inline=True, progress=False)
    assert caught.value.location.path == "search.num_samples" and caught.value.location.source == "<dict>"
    assert "greater than or equal to 1" in caught.value.message and "found 0" in caught.value.message
    assert not (tmp_path / "runs").exists()  # nothing was written

    with pytest.raises(raytuner.SpecError) as not_trainable:
        raytuner.validate({**spec, "search": {}, "trainable": {"function": 3}})
    assert not_trainable.value.location.path == "trainable.function"

    def two_arguments(a: Any, b: Any) -> None:
        pass

    with pytest.raises(raytuner.SpecError, match="takes \\(a, b\\)") as wrong:
        raytuner.validate({**spec, "search": {}, "trainable": {"function": two_arguments}})
    assert wrong.value.location.path == "trainable.function"


def test_validate_returns_the_plan_and_takes_overrides_as_a_dict_or_strings(tmp_path: Path) -> None:
    def train(config: dict[str, Any]) -> None:
        tune.report({"loss": config["x"]})

    spec = quadratic_spec(train, tmp_path / "runs")
    plan = raytuner.validate(spec, overrides={"search.num_samples": 7, "name": "renamed"}, samples=2)
    assert plan.trials == 7 and plan.name == "renamed" and len(plan.samples) == 2
    assert plan.spec["search"]["num_samples"] == 7 and plan.spec["trainable"]["function"].startswith("<object ")
    assert raytuner.validate(spec, overrides=["search.num_samples=5"]).trials == 5
    typed = raytuner.Spec.model_validate(spec)  # a spec object, its trainable object kept
    assert raytuner.validate(typed, overrides={"search.num_samples": 6}).trials == 6
    text = (
        "name: fromtext\ntrainable: {builtin: analytic, objective: sphere}\nmetric: loss\nmode: min\n"
        "space: {x: {uniform: [-1, 1]}}\n"
    )
    assert raytuner.validate(text).name == "fromtext"
    file = tmp_path / "spec.yaml"
    file.write_text(text)
    assert raytuner.validate(str(file), name="other").name == "other"
    assert raytuner.validate(file).spec["trainable"]["builtin"] == "analytic"
    with pytest.raises(raytuner.SpecError) as caught:
        raytuner.validate(file, overrides=["search.num_samples=-3"])
    assert caught.value.location.source == "<--set>" or caught.value.location.path == "search.num_samples"


def test_open_by_name_folder_and_while_running(tmp_path: Path) -> None:
    storage = tmp_path / "runs"
    seen: list[tuple[str, int]] = []

    calls: list[int] = []

    def train(config: dict[str, Any]) -> None:
        calls.append(1)
        for t in range(1, 3):
            tune.report({"loss": config["x"] ** 2 + 1.0 / t})
        if len(calls) == 3:  # two trials ended: the run writes its trials table soon
            for _ in range(300):
                if (storage / "quad" / "trials.parquet").exists():
                    break
                time.sleep(0.1)
            running = raytuner.open("quad", storage=str(storage))
            seen.append((running.state, running.results().num_rows))

    spec = quadratic_spec(train, storage, space={"x": {"uniform": [-1.0, 1.0]}})
    spec["search"] = {"algorithm": "random", "num_samples": 4, "seed": 2, "max_concurrent": 1}
    raytuner.run(spec, inline=True, progress=False)
    assert seen and seen[0][0] == "running" and seen[0][1] >= 2

    by_name = raytuner.open("quad", storage=str(storage))
    by_folder = raytuner.open(storage / "quad")
    assert by_name.folder == by_folder.folder == str(storage / "quad")
    assert by_name.state == "completed" and by_name.spec is not None and by_name.spec["metric"] == "loss"
    assert by_folder.trials().equals(by_name.trials())
    assert by_name.lineage().num_rows == 0  # no PBT
    report = by_name.report(tmp_path / "r.html")
    assert report == tmp_path / "r.html" and "<svg" in report.read_text()
    with pytest.raises(raytuner.UsageError, match="single metric"):
        by_name.front()
    with pytest.raises(raytuner.UsageError, match="no experiment 'missing'"):
        raytuner.open("missing", storage=str(storage))


def test_several_metrics_give_a_front_not_a_best(tmp_path: Path) -> None:
    def train(config: dict[str, Any]) -> None:
        tune.report({"f1": config["x"] ** 2, "f2": (config["x"] - 1.0) ** 2})

    spec = quadratic_spec(train, tmp_path / "runs", space={"x": {"uniform": [-1.0, 2.0]}})
    spec["metric"] = ["f1", "f2"]
    experiment = raytuner.run(spec, inline=True, progress=False)
    front = experiment.front()
    assert front and all(set(t.values) == {"f1", "f2"} for t in front)
    trials = experiment.trials().to_pylist()
    assert {t.trial_id for t in front} == {row["trial_id"] for row in trials if row["pareto"]}
    for t in front:  # no trial is better on both metrics
        assert not any(row["last/f1"] < t.values["f1"] and row["last/f2"] < t.values["f2"] for row in trials)
    with pytest.raises(raytuner.UsageError, match="front\\(\\)"):
        experiment.best()


def test_progress_prints_the_runs_lines_and_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def train(config: dict[str, Any]) -> None:
        tune.report({"loss": config["x"] ** 2})

    spec = quadratic_spec(train, tmp_path / "runs", space={"x": {"uniform": [-1.0, 1.0]}})
    spec["search"] = {"algorithm": "random", "num_samples": 2}
    raytuner.run(spec, inline=True)
    out = capsys.readouterr().out
    assert "quad: 2 trials" in out and "completed in" in out and "experiment folder:" in out
    raytuner.run({**spec, "name": "silent"}, inline=True, progress=False)
    assert capsys.readouterr().out == ""



@pytest.mark.slow
def test_open_reads_an_experiment_on_object_storage(s3_server: Any, tmp_path: Path) -> None:
    import pyarrow.fs as pafs

    def train(config: dict[str, Any]) -> None:
        tune.report({"loss": (config["x"] - 1.0) ** 2})

    spec = quadratic_spec(train, tmp_path / "runs", space={"x": {"uniform": [-1.0, 2.0]}})
    spec["search"] = {"algorithm": "random", "num_samples": 3, "seed": 5}
    local = raytuner.run(spec, inline=True, progress=False)
    s3 = s3_server.client()
    s3.create_dir("apibucket")
    pafs.copy_files(local.folder, "apibucket/runs/quad", source_filesystem=pafs.LocalFileSystem(), destination_filesystem=s3)
    with pytest.MonkeyPatch.context() as env:
        for key, value in s3_server.env.items():
            env.setenv(key, value)
        by_uri = raytuner.open("s3://apibucket/runs/quad")
        by_name = raytuner.open("quad", storage="s3://apibucket/runs")
        assert by_uri.folder == by_name.folder == "s3://apibucket/runs/quad"
        assert by_uri.state == "completed" and by_uri.spec is not None and by_uri.spec["name"] == "quad"
        assert by_uri.trials().equals(local.trials()) and by_name.results().num_rows == 3
        assert by_name.best() == local.best()


def test_the_cli_says_in_one_line_that_an_object_trainable_is_resumed_from_python(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from raytuner.cli import app

    def train(config: dict[str, Any]) -> None:
        tune.report({"loss": config["x"] ** 2})

    spec = quadratic_spec(train, tmp_path / "runs", space={"x": {"uniform": [-1.0, 1.0]}})
    spec["search"] = {"algorithm": "random", "num_samples": 1}
    experiment = raytuner.run(spec, inline=True, progress=False)
    result = CliRunner().invoke(app, ["extend", experiment.folder, "-n", "1"])
    assert result.exit_code == 2, result.output
    assert "was a Python object given to raytuner.run()" in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
