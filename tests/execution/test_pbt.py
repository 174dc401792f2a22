"""PBT and PB2 through raytuner: validation, a real population, the lineage table."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from raytuner.errors import SpecError
from raytuner.execution.events import EventKind, Recorder
from raytuner.execution.runner import RunOptions, RunState, run_experiment
from raytuner.results.lineage import best_schedule, read_exploits
from raytuner.search.preview import budget
from raytuner.spec.loader import load_experiment_text

PBT = """
name: pbt
trainable: {builtin: analytic, objective: sphere, iterations: 12}
metric: loss
mode: min
space:
  x: {uniform: [-2, 2]}
search: {num_samples: 4, seed: 1}
scheduler:
  type: pbt
  perturbation_interval: 2
  hyperparam_mutations:
    x: {uniform: [-2, 2]}
    y: [0.0, 0.5, 1.0]
checkpoint: {every: 2}
"""


@pytest.mark.parametrize(
    ("override", "where", "words"),
    [
        ("checkpoint.every=0", "checkpoint", "set checkpoint.every"),
        ("checkpoint.every=3", "scheduler.perturbation_interval", "not a multiple"),
        ("search.algorithm=hyperopt", "search.algorithm", "use algorithm: random or grid"),
        ("scheduler.hyperparam_mutations.x={choice: [{a: 1}, {b: 2}]}", "scheduler.hyperparam_mutations.x", "conditional"),
        ("scheduler.hyperparam_mutations={}", "scheduler.hyperparam_mutations", "at least one"),
        ("trainable={function: 'user_trainables:quadratic'}", "scheduler.type", "never restores one"),
    ],
)
def test_pbt_setups_that_cannot_work_are_refused(override: str, where: str, words: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_experiment_text(PBT, "pbt.yaml", [override])
    assert caught.value.location.path == where
    assert words in str(caught.value)


def test_checkpointing_user_code_is_accepted_and_missing_mutated_keys_are_noted() -> None:
    load_experiment_text(PBT, "pbt.yaml", ["trainable={function: 'user_trainables:checkpointing'}"])
    load_experiment_text(PBT, "pbt.yaml", ["trainable={function: 'user_trainables:Counter'}"])
    notes = budget(load_experiment_text(PBT, "pbt.yaml")).notes
    assert any("'y', which is not in space" in note for note in notes)


@pytest.mark.ray
@pytest.mark.slow
def test_a_pbt_population_records_its_lineage(ray_session: None, tmp_path: Path) -> None:
    experiment = load_experiment_text(PBT + f"storage: {tmp_path}\n", "pbt.yaml")
    recorder = Recorder()
    summary = run_experiment(experiment, RunOptions(), recorder)
    assert summary.state is RunState.COMPLETED
    assert len(summary.trials) == 4

    exploits = read_exploits(summary.folder)
    assert exploits, "a 4-member population over 12 iterations exploits at least once"
    assert recorder.kinds().count(EventKind.PBT_EXPLOIT) == len(exploits)
    ids = set(summary.trials)
    for exploit in exploits:
        assert exploit.trial_id in ids and exploit.source_trial_id in ids
        assert exploit.trial_id != exploit.source_trial_id
        assert isinstance(exploit.new_config["x"], float)
        assert exploit.new_config["y"] in (0.0, 0.5, 1.0)

    import raytuner

    lineage = raytuner.open(summary.folder).lineage()  # the Python API reads the same decisions
    assert lineage.column("trial_id").to_pylist() == [e.trial_id for e in exploits]
    assert lineage.column("source_trial_id").to_pylist() == [e.source_trial_id for e in exploits]

    trials = pq.read_table(summary.folder / "trials.parquet").to_pandas()
    assert {"config/x", "config/y"} <= set(trials.columns)  # y exists only through the mutations
    assert trials["config/y"].notna().all()

    best = summary.book.best
    assert best is not None
    final = json.loads(trials.set_index("trial_id").loc[best.trial_id, "config_json"])
    schedule = best_schedule(summary.folder, best.trial_id)
    from typer.testing import CliRunner

    from raytuner.cli import app

    shown = CliRunner().invoke(app, ["show", str(summary.folder)])
    assert shown.exit_code == 0, shown.output
    assert f"{len(exploits)} exploit/explore decisions; the best trial {best.trial_id} followed" in shown.output
    assert "from step 0 (trial " in shown.output
    if any(e.trial_id == best.trial_id for e in exploits):
        assert schedule[0].start_step == 0
        assert [s.start_step for s in schedule] == sorted(s.start_step for s in schedule)
        assert schedule[-1].trial_id == best.trial_id and schedule[-1].config == final


@pytest.mark.ray
@pytest.mark.slow
def test_a_pbt_population_resumes(ray_session: None, tmp_path: Path) -> None:
    """Ray restores the population's own search (PBT refuses any other): a resume of a finished
    population runs nothing again and keeps its trials (it failed, a population is no Searcher)."""
    from raytuner.execution.runner import resume_experiment

    text = PBT.replace("num_samples: 4", "num_samples: 2").replace("iterations: 12", "iterations: 4")
    summary = run_experiment(load_experiment_text(text + f"storage: {tmp_path}\n", "pbt.yaml"), RunOptions(), Recorder())
    assert summary.state is RunState.COMPLETED
    recorder = Recorder()
    again = resume_experiment(summary.folder, RunOptions(), recorder)
    assert again.state is RunState.COMPLETED and EventKind.TRIAL_STARTED not in recorder.kinds()
    trials = pq.read_table(summary.folder / "trials.parquet").to_pandas()
    assert len(trials) == 2 and set(trials["status"]) == {"completed"}


@pytest.mark.ray
@pytest.mark.slow
def test_pb2_explores_within_its_bounds(ray_session: None, tmp_path: Path) -> None:
    text = PBT.replace(
        """  type: pbt
  perturbation_interval: 2
  hyperparam_mutations:
    x: {uniform: [-2, 2]}
    y: [0.0, 0.5, 1.0]""",
        """  type: pb2
  perturbation_interval: 2
  hyperparam_bounds: {x: [-2, 2]}""",
    )
    summary = run_experiment(load_experiment_text(text + f"storage: {tmp_path}\n", "pb2.yaml"), RunOptions(), Recorder())
    assert summary.state is RunState.COMPLETED
    exploits = read_exploits(summary.folder)
    assert exploits
    assert all(-2 <= e.new_config["x"] <= 2 for e in exploits)


def test_command_trainables_need_their_checkpoint_folder_for_pbt(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text("print('{\"loss\": 1.0}')\n")
    command = f"trainable={{command: [python, {script}, '{{x}}']}}"
    load_experiment_text(PBT, "pbt.yaml", [command])
    with pytest.raises(SpecError) as caught:
        load_experiment_text(PBT, "pbt.yaml", [command, "trainable.checkpoint=false"])
    assert caught.value.location.path == "trainable.checkpoint"
