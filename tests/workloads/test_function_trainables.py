"""Python trainables as Ray Tune users write them: Ray's own shipped examples, unmodified,
a class with checkpoints, and a module found next to the spec, through a real local Ray."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raytuner.errors import SpecError
from raytuner.execution.events import Recorder
from raytuner.execution.runner import RunOptions, RunSummary, run_experiment
from raytuner.results.records import TrialStatus
from raytuner.spec.loader import Experiment, load_experiment, load_experiment_text
from raytuner.workloads import build_trainable


def spec(function: str, metric: str, mode: str, rest: str) -> str:
    return f"name: fn\ntrainable: {{function: '{function}'}}\nmetric: {metric}\nmode: {mode}\n{rest}"


def run(experiment: Experiment | str, storage: Path) -> RunSummary:
    if isinstance(experiment, str):
        experiment = load_experiment_text(experiment + f"\nstorage: {storage}\n")
    return run_experiment(experiment, RunOptions(), Recorder())


@pytest.mark.parametrize(
    ("target", "fragments"),
    [
        ("no_such_module_xyz:train", ("cannot import module 'no_such_module_xyz'",)),
        ("user_trainables:missing", ("has no attribute 'missing'",)),
        ("user_trainables:NOT_A_TRAINABLE", ("is a int", "expected a function taking a config dict")),
        ("user_trainables:NotATrainable", ("is a class but not a ray.tune.Trainable subclass",)),
        ("user_trainables:two_arguments", ("takes (config, data)", "takes one argument")),
    ],
)
def test_targets_that_are_not_trainables_are_spec_errors(target: str, fragments: tuple[str, ...]) -> None:
    with pytest.raises(SpecError) as caught:
        load_experiment_text(spec(target, "loss", "min", "space: {x: 1}\n"))
    assert caught.value.exit_code == 2 and "trainable.function" in str(caught.value)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_classes_are_reused_only_with_reset_config() -> None:
    reusable = build_trainable(load_experiment_text(spec("user_trainables:Resumable", "loss", "min", "")))
    assert reusable.reusable and reusable.label == "Resumable"
    example = "ray.tune.examples.pbt_example:PBTBenchmarkExample"
    assert build_trainable(load_experiment_text(spec(example, "mean_accuracy", "max", ""))).reusable


@pytest.mark.ray
@pytest.mark.slow
def test_rays_shipped_function_example_runs_unmodified_with_its_checkpoints(ray_session: None, storage: Path) -> None:
    summary = run(
        spec(
            "ray.tune.examples.hyperband_function_example:train_func",
            "episode_reward_mean",
            "max",
            "space: {height: {uniform: [0, 100]}}\nsearch: {num_samples: 2, seed: 1}\nstop: {iterations: 5}\n"
            "checkpoint: {keep: 1}\n",
        ),
        storage,
    )
    for record in summary.trials.values():
        assert record.status is TrialStatus.COMPLETED and record.iterations == 5
        (checkpoint,) = Path(record.trial_dir or "").glob("checkpoint_*")  # every 3 steps, keep 1
        assert json.loads((checkpoint / "checkpoint.json").read_text()) == {"timestep": 3}


@pytest.mark.ray
@pytest.mark.slow
def test_rays_shipped_class_example_runs_unmodified(ray_session: None, storage: Path) -> None:
    summary = run(
        spec(
            "ray.tune.examples.pbt_example:PBTBenchmarkExample",
            "mean_accuracy",
            "max",
            "space: {lr: {loguniform: [0.0001, 0.02]}}\nsearch: {num_samples: 3, seed: 4}\nstop: {iterations: 4}\n",
        ),
        storage,
    )
    records = list(summary.trials.values())
    assert [r.status for r in records] == [TrialStatus.COMPLETED] * 3
    assert all(r.iterations == 4 for r in records)


@pytest.mark.ray
@pytest.mark.slow
def test_class_trainable_resumes_from_its_checkpoint_after_a_failure(ray_session: None, storage: Path) -> None:
    summary = run(
        spec(
            "user_trainables:Resumable",
            "loss",
            "min",
            "space: {x: {grid: [0.5]}}\nsearch: {algorithm: grid}\nfailure: {max_retries: 1}\nstop: {iterations: 4}\n",
        ),
        storage,
    )
    for record in summary.trials.values():
        assert record.status is TrialStatus.COMPLETED, record.error
        assert record.num_failures == 1 and "simulated preemption" in (record.error or "")
        assert record.iterations == 4  # steps 1, 2, then 3 and 4 after resuming from step 2
        assert record.best == pytest.approx(abs(record.config["x"]) + 0.25)



@pytest.mark.ray
@pytest.mark.slow
def test_a_class_without_save_checkpoint_completes_on_ray(ray_session: None, storage: Path) -> None:
    """Ray saves a class trainable at its end by default: without save_checkpoint every trial
    failed there with NotImplementedError, after all its reports."""
    rest = "space: {x: {grid: [0.5, -1.0]}}\nsearch: {algorithm: grid}\nstop: {iterations: 3}\n"
    summary = run(spec("user_trainables:Stateless", "loss", "min", rest), storage)
    records = list(summary.trials.values())
    assert [r.status for r in records] == [TrialStatus.COMPLETED] * 2, [r.error for r in records]
    assert all(r.iterations == 3 for r in records)

MODULE = """
from ray import tune

OFFSET = 10.0


def train(config):
    for t in range(1, 4):
        tune.report({"loss": OFFSET + config["x"] / t, "t": t})
"""


@pytest.mark.ray
@pytest.mark.slow
def test_a_module_next_to_the_spec_runs_on_workers_that_cannot_import_it(
    ray_session: None, storage: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "spec_side_module_rt.py").write_text(MODULE)
    file = folder / "exp.yaml"
    file.write_text(
        spec(
            "spec_side_module_rt:train",
            "loss",
            "min",
            f"space: {{x: {{grid: [1.0, 2.0]}}}}\nsearch: {{algorithm: grid}}\nstorage: {storage}\n",
        )
    )
    summary = run(load_experiment(file), storage)  # the session's workers do not have `folder` on their path
    records = sorted(summary.trials.values(), key=lambda r: r.config["x"])
    assert [r.status for r in records] == [TrialStatus.COMPLETED] * 2
    assert [r.best for r in records] == pytest.approx([10.0 + 1.0 / 3, 10.0 + 2.0 / 3])
