"""``raytuner checkpoint`` refusing what it cannot copy: one line, the documented exit code.

The experiments are real inline runs (no Ray); the command runs in-process, with its error
output checked as the user sees it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from raytuner.cli import app
from raytuner.execution.events import Recorder
from raytuner.execution.runner import RunOptions, run_experiment
from raytuner.spec.loader import load_experiment_text

SPEC = """
name: {name}
trainable: {trainable}
metric: loss
mode: min
space: {{x: {{uniform: [-1, 1]}}}}
search: {{algorithm: random, num_samples: 2, seed: 1}}
checkpoint: {{every: {every}}}
execution: {{backend: inline}}
storage: {storage}
"""


def _run(storage: Path, name: str, trainable: str, every: int = 0) -> Path:
    text = SPEC.format(name=name, trainable=trainable, every=every, storage=storage)
    return run_experiment(load_experiment_text(text), RunOptions(num_cpus=2), Recorder()).folder


def _refused(args: list[str], code: int, fragment: str) -> None:
    done = CliRunner().invoke(app, ["checkpoint", *args])
    lines = [line for line in done.output.splitlines() if line.strip()]
    assert done.exit_code == code, done.output
    assert len(lines) == 1 and fragment in lines[0], done.output
    assert "Traceback" not in done.output


def test_what_has_no_checkpoint_to_copy_is_refused_in_one_line(tmp_path: Path) -> None:
    storage = tmp_path / "runs"
    never = _run(storage, "never", "{builtin: analytic, iterations: 3}")  # checkpoint.every 0
    _refused([str(never), "-o", str(tmp_path / "a")], 2, "kept no checkpoints: its spec has checkpoint.every 0")
    silent = _run(storage, "silent", '{function: "user_trainables:quadratic"}')  # never reports a checkpoint
    _refused([str(silent), "-o", str(tmp_path / "b")], 1, "has no checkpoint recorded")
    kept = _run(storage, "kept", "{builtin: analytic, iterations: 4}", every=2)
    _refused([str(kept), "--trial", "nope", "-o", str(tmp_path / "c")], 2, "has no trial 'nope'; its trials: ")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    _refused([str(kept), "-o", str(tmp_path / "full")], 2, "already exists and is not an empty folder")
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()  # nothing made for a refusal

    done = CliRunner().invoke(app, ["checkpoint", "kept", "--storage", str(storage), "-o", str(tmp_path / "d")])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "d" / "state.json").read_text() == '{"iteration": 4}'


@pytest.mark.parametrize("which", ["best", "last"])
def test_a_checkpoint_deleted_behind_raytuners_back_is_one_line(tmp_path: Path, which: str) -> None:
    import shutil

    import raytuner

    folder = _run(tmp_path / "runs", "gone", "{builtin: analytic, iterations: 4}", every=2)
    found = raytuner.open(str(folder)).best_checkpoint(which=which)
    shutil.rmtree(found.location)
    _refused([str(folder), "--which", which, "-o", str(tmp_path / "out")], 1, "is gone (trials.parquet lists it)")
