"""``checkpoint: {keep, score}``: which checkpoints stay, on both backends, and what trials.parquet records.

The runs use a trainable whose accuracy peaks at step 3 of 8 (overfitting): keeping the last
checkpoint loses the peak, keeping the best by accuracy does not. What is asserted is read
from the disk and the Parquet table, not from raytuner's memory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from raytuner.cli import app
from raytuner.execution.events import Recorder
from raytuner.execution.retention import Retention
from raytuner.execution.runner import RunOptions, RunSummary, run_experiment
from raytuner.spec.loader import load_experiment_text

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"  # user_trainables

RAYTUNER = str(Path(sys.executable).parent / "raytuner")
PEAKS = """
name: peak
trainable: {function: "user_trainables:peaks_early"}
metric: loss
mode: min
space: {x: {uniform: [-1, 1]}}
search: {algorithm: random, num_samples: 2, seed: 1}
"""
BY_SCORE = "checkpoint: {keep: 1, score: {metric: accuracy, mode: max}}\n"
LAST = "checkpoint: {keep: 1}\n"


def test_the_rule_keeps_the_best_by_score_or_the_last_and_always_the_latest() -> None:
    by_score = Retention(keep=2, metric="accuracy", sign=1.0, scored=True)
    values = [0.5, 0.9, None, 0.7, 0.9, 0.1]
    assert by_score.kept(values) == {1, 4, 5}  # the two 0.9 (of equal ones the later ranks higher), the latest
    assert by_score.best(values) == 4
    assert Retention(keep=1, metric="loss", sign=-1.0, scored=True).kept([3.0, 1.0, 2.0]) == {1, 2}
    last = Retention(keep=2, metric="accuracy", sign=1.0, scored=False)
    assert last.kept(values) == {4, 5}
    assert Retention(keep=None, metric="a", sign=1.0, scored=True).kept(values) == set(range(6))
    assert by_score.best([None, None]) == 1  # no value: the later


def _folders(trial: Path, count: int) -> None:
    for number in range(count):
        (trial / f"checkpoint_{number:06d}").mkdir(parents=True)
        (trial / f"checkpoint_{number:06d}" / "state.json").write_text(json.dumps({"step": number + 1}))


def test_a_resumed_ray_trial_keeps_what_its_list_names_up_to_where_ray_resumes_it(tmp_path: Path) -> None:
    """Listed: 1, 2, 4; Ray's saved state resumes the trial from 3 (dropped from the list after
    that save) and numbers its next checkpoint 4; 0 was dropped, its deletion cut short; 5 was
    made after the save. Another trial resumes from 0 (PBT)."""
    import pyarrow.fs as pafs

    from raytuner.execution.retention import CHECKPOINTS_FILE, relist
    from raytuner.results.records import Kept

    trial = tmp_path / "exp" / "t1"
    _folders(trial, 6)
    listing = [["checkpoint_000001", 2, 2.0, 0.5], ["checkpoint_000002", 3, 3.0, 0.9], ["checkpoint_000004", 5, 5.0, 0.1]]
    (trial / CHECKPOINTS_FILE).write_text(json.dumps(listing))
    latest = Kept("t1/checkpoint_000003", 4, 0.2, 4.0)
    restored = {str(trial / "checkpoint_000000"), str(trial / "checkpoint_000003")}
    kept = relist(pafs.LocalFileSystem(), str(trial), 3, latest, restored)

    assert kept == [Kept("t1/checkpoint_000001", 2, 0.5, 2.0), Kept("t1/checkpoint_000002", 3, 0.9, 3.0), latest]
    on_disk = sorted(p.name for p in trial.glob("checkpoint_*"))
    assert on_disk == [f"checkpoint_00000{n}" for n in (0, 1, 2, 3)]  # 0 stays: another trial resumes from it
    listed = json.loads((trial / CHECKPOINTS_FILE).read_text())  # written again, before anything was deleted
    assert listed == [["checkpoint_000001", 2, 2.0, 0.5], ["checkpoint_000002", 3, 3.0, 0.9], ["checkpoint_000003", 4, 4.0, 0.2]]
    (trial / CHECKPOINTS_FILE).unlink()
    assert relist(pafs.LocalFileSystem(), str(trial), 0, None, set()) is None  # a run before lists: nothing deleted
    assert len(list(trial.glob("checkpoint_*"))) == 4


def test_an_inline_resume_deletes_the_checkpoint_folders_its_list_does_not_name(tmp_path: Path) -> None:
    """The driver died between writing a checkpoint and listing it, or between the list and a deletion."""
    from raytuner.execution.inline import _listed_checkpoints
    from raytuner.execution.retention import CHECKPOINTS_FILE

    trial = tmp_path / "t1"
    _folders(trial, 4)
    (trial / "checkpoint_000004.partial").mkdir()
    listing = [["checkpoint_000001", 2, 2.0, 0.5], [str(trial / "checkpoint_000002"), 3, 3.0, None]]  # absolute: an older list
    (trial / CHECKPOINTS_FILE).write_text(json.dumps(listing))
    kept = _listed_checkpoints(trial, [])

    assert kept == [(str(trial / "checkpoint_000001"), 2, 2.0, 0.5), (str(trial / "checkpoint_000002"), 3, 3.0, None)]
    assert sorted(p.name for p in trial.iterdir()) == ["checkpoint_000001", "checkpoint_000002", CHECKPOINTS_FILE]


def _run(text: str, storage: Path, backend: str) -> RunSummary:
    experiment = load_experiment_text(text + f"execution: {{backend: {backend}}}\nstorage: {storage}\n")
    return run_experiment(experiment, RunOptions(num_cpus=2), Recorder())


def _steps(folder: Path) -> list[int]:
    """The steps the trial's checkpoints on disk hold, in order."""
    return sorted(json.loads((c / "state.json").read_text())["step"] for c in folder.glob("checkpoint_*"))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["inline", pytest.param("ray", marks=pytest.mark.ray)])
def test_keeping_by_score_retains_the_peak_that_keeping_the_last_deletes(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "ray":
        request.getfixturevalue("ray_session")
    by_score = _run(PEAKS.replace("name: peak", "name: by-score") + BY_SCORE, tmp_path / "runs", backend)
    last = _run(PEAKS.replace("name: peak", "name: by-last") + LAST, tmp_path / "runs", backend)

    for trial in pq.read_table(by_score.folder / "trials.parquet").to_pylist():
        assert _steps(Path(trial["trial_dir"])) == [3, 8]  # the peak, and the latest for resume
        assert (trial["checkpoint_best_iteration"], trial["checkpoint_best_value"]) == (3, pytest.approx(0.9))
        assert json.loads((by_score.folder / trial["checkpoint_best"] / "state.json").read_text()) == {"step": 3}
        assert trial["checkpoint_last_iteration"] == 8
    for trial in pq.read_table(last.folder / "trials.parquet").to_pylist():
        assert _steps(Path(trial["trial_dir"])) == [8]  # the peak was deleted
        assert trial["checkpoint_best"] == trial["checkpoint_last"] and trial["checkpoint_best_iteration"] == 8

    out = tmp_path / "best-checkpoint"
    copied = CliRunner().invoke(app, ["checkpoint", str(by_score.folder), "-o", str(out)])
    assert copied.exit_code == 0, copied.output
    assert json.loads((out / "state.json").read_text()) == {"step": 3}
    assert "accuracy = 0.9" in copied.output
    import raytuner

    best_trial = raytuner.open(str(by_score.folder)).best()[0].trial_id
    found = raytuner.open(str(by_score.folder)).best_checkpoint()
    assert (found.trial_id, found.iteration, Path(found.location).parent.parent) == (best_trial, 3, by_score.folder)
    shown = CliRunner().invoke(app, ["best", str(by_score.folder), "-f", "json"])
    best = json.loads(shown.stdout)
    assert best["checkpoint"] == found.location  # best names where it is, its iteration and score
    assert (best["checkpoint_iteration"], best["checkpoint_score"]) == (3, {"accuracy": pytest.approx(0.9)})
    pasted = CliRunner().invoke(app, ["best", str(by_score.folder)])
    assert yaml.safe_load(pasted.stdout) == {"space": best["config"]}  # still a spec's space to paste: the rest is comments
    assert f"# checkpoint: {found.location} (iteration 3, accuracy = 0.9)\n" in pasted.stdout
    pytest.importorskip("starlette")  # the dashboard's best.yaml too
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # StarletteDeprecationWarning: a note on its httpx client, which works
        from starlette.testclient import TestClient
    from raytuner.dashboard.app import build

    with TestClient(build(str(by_score.folder.parent)), base_url="http://127.0.0.1") as client:
        served = yaml.safe_load(client.get("/e/by-score/best.yaml?n=2").text)
    assert [(e["checkpoint_iteration"], e["checkpoint_score"]) for e in served] == [(3, {"accuracy": pytest.approx(0.9)})] * 2
    assert served[0]["checkpoint"] == found.location and served[1]["checkpoint"].startswith(str(by_score.folder))
    latest = raytuner.open(str(by_score.folder)).copy_checkpoint(tmp_path / "latest", which="last")
    assert json.loads((latest / "state.json").read_text()) == {"step": 8}


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize(
    ("backend", "save_every_s"), [("ray", None), ("ray", "1"), ("inline", None)], ids=["ray", "ray-saving-often", "inline"]
)
def test_a_run_killed_while_keeping_by_score_resumes_without_losing_a_checkpoint(
    tmp_path: Path, backend: str, save_every_s: str | None
) -> None:
    """Ray saves its experiment state every 10 s or more; a checkpoint deleted at once when a
    newer, worse one came was still the latest that state named, and the resumed trials failed
    ("Could not recover from checkpoint as it does not exist on storage anymore").

    Saving often, Ray resumes the trials from a late checkpoint: a resume that rebuilt the kept
    checkpoints from trials.parquet's best and latest forgot the others, and never deleted those
    the policy had dropped when the driver died (5 and 6 stayed beside 3, 4 and 8)."""
    spec = tmp_path / "spec.yaml"
    paced = PEAKS.replace("{x: {uniform: [-1, 1]}}", "{x: {uniform: [-1, 1]}, sleep_s: 0.7}")
    spec.write_text(paced + BY_SCORE.replace("keep: 1", "keep: 2") + f"execution: {{backend: {backend}}}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "TUNE_GLOBAL_CHECKPOINT_S")}
    if save_every_s is not None:
        env["TUNE_GLOBAL_CHECKPOINT_S"] = save_every_s
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(FIXTURES), env.get("PYTHONPATH")]))  # user_trainables
    storage = tmp_path / "runs"
    command = [RAYTUNER, "run", str(spec), "--storage", str(storage), "--cpus", "2", "--json"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=tmp_path)
    try:
        deadline = time.time() + 240
        while not list(storage.glob("peak/*/checkpoint_000005")) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        time.sleep(0.9)  # a step on: the checkpoint of step 6, the latest when Ray last saved, is dropped
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    folder = storage / "peak"
    assert json.loads((folder / "status.json").read_text())["state"] == "running"  # died mid-run

    resumed = subprocess.run(
        [RAYTUNER, "resume", str(folder), "--json"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-2000:]
    trials = pq.read_table(folder / "trials.parquet").to_pylist()
    assert [t["status"] for t in trials] == ["completed", "completed"]
    for trial in trials:
        assert trial["checkpoint_best_iteration"] == 3 and trial["checkpoint_last_iteration"] == 8
        for which, step in (("checkpoint_best", 3), ("checkpoint_last", 8)):
            assert json.loads((folder / trial[which] / "state.json").read_text()) == {"step": step}
        # on disk, what the policy keeps and nothing else: the 2 best by accuracy (0.9 at step 3; of
        # the two 0.8 the later, step 4) and the latest; a resume rebuilt from trials.parquet forgot step 4
        trial_dir = Path(trial["trial_dir"])
        assert _steps(trial_dir) == [3, 4, 8], sorted(p.name for p in trial_dir.iterdir())
        listed = json.loads((trial_dir / "checkpoints.json").read_text())  # [folder, iteration, time_total_s, value]
        assert [(row[1], row[3]) for row in listed] == [(3, pytest.approx(0.9)), (4, pytest.approx(0.8)), (8, pytest.approx(0.4))]
        assert sorted(row[0] for row in listed) == sorted(p.name for p in trial_dir.glob("checkpoint_*"))


def test_an_inline_resume_finds_an_older_lists_checkpoints_in_a_moved_experiment_folder(tmp_path: Path) -> None:
    """An older list names absolute paths; read as they were, a copied or renamed experiment
    folder resumed its trial from scratch beside its checkpoints."""
    from raytuner.execution.inline import _listed_checkpoints
    from raytuner.execution.retention import CHECKPOINTS_FILE

    trial = tmp_path / "moved" / "t1"
    _folders(trial, 2)
    listing = [[str(tmp_path / "before" / "t1" / "checkpoint_000001"), 2, 2.0]]  # where the folder was
    (trial / CHECKPOINTS_FILE).write_text(json.dumps(listing))

    assert _listed_checkpoints(trial, []) == [(str(trial / "checkpoint_000001"), 2, 2.0, None)]
    assert sorted(p.name for p in trial.glob("checkpoint_*")) == ["checkpoint_000001"]
