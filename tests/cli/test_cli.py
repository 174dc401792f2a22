"""The CLI in-process (CliRunner) and as the installed command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from raytuner.cli import app

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "experiments" / "quickstart.yaml"
runner = CliRunner()


def test_help_does_not_import_heavy_modules() -> None:
    code = "import sys, raytuner.cli; print(','.join(m for m in ('ray','torch','hyperopt','pyarrow') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


@pytest.mark.parametrize(("given", "expected"), [(None, "system"), ("mimalloc", "mimalloc")])
def test_the_command_allocates_arrow_with_malloc_unless_told_otherwise(given: str | None, expected: str) -> None:
    """mimalloc kept what the driver's table writes freed: its memory grew with the trials."""
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if given:
        env["ARROW_DEFAULT_MEMORY_POOL"] = given
    code = "import raytuner.cli, pyarrow; print(pyarrow.default_memory_pool().backend_name)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.strip() == expected


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("run", "validate", "ls", "best", "checkpoint", "init", "schema", "submit", "jobs", "dashboard"):
        assert command in result.output


def test_validate_shows_budget_and_samples() -> None:
    result = runner.invoke(app, ["validate", str(QUICKSTART), "-n", "2"])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output and "32 trials" in result.output
    assert result.output.count("sample ") == 2


def test_validate_json_applies_overrides() -> None:
    result = runner.invoke(app, ["validate", str(QUICKSTART), "--json", "--set", "search.num_samples=5"])
    payload = json.loads(result.output)
    assert payload["budget"]["trials"] == 5
    assert payload["spec"]["search"]["num_samples"] == 5


def test_bad_spec_is_one_line_exit_2_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(QUICKSTART.read_text().replace("algorithm: hyperopt", "algorithm: hyperpot"))
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    line_no = next(i for i, text in enumerate(bad.read_text().splitlines(), 1) if "hyperpot" in text)
    assert f"bad.yaml:{line_no}: search.algorithm" in lines[0]
    assert "'hyperpot'" in lines[0] and "'hyperopt'" in lines[0]
    assert "Traceback" not in result.output


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--debug", "validate", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2
    assert "Traceback" in result.stderr and "file not found" in result.stderr


def test_bad_override_is_refused_before_anything_runs(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", str(QUICKSTART), "--set", "search.num_samples=0", "--storage", str(tmp_path)])
    assert result.exit_code == 2
    assert "--set search.num_samples=0" in result.stderr and "greater than or equal to 1" in result.stderr
    assert not any(tmp_path.iterdir())


def test_init_writes_a_spec_that_validates(tmp_path: Path) -> None:
    target = tmp_path / "mine.yaml"
    assert runner.invoke(app, ["init", str(target)]).exit_code == 0
    assert runner.invoke(app, ["validate", str(target)]).exit_code == 0
    again = runner.invoke(app, ["init", str(target)])
    assert again.exit_code == 2 and "--force" in again.stderr


def test_schema_is_json_schema_for_the_spec() -> None:
    result = runner.invoke(app, ["schema"])
    schema = json.loads(result.output)
    assert schema["title"] == "raytuner experiment spec"
    assert {"trainable", "metric", "mode", "space", "search", "scheduler"} <= set(schema["properties"])
    assert "SpaceNode" in schema["$defs"]


@pytest.mark.ray
@pytest.mark.slow
def test_run_json_then_ls_and_best(ray_session: None, tmp_path: Path) -> None:
    storage = tmp_path / "runs"
    result = runner.invoke(
        app,
        ["run", str(QUICKSTART), "--json", "--storage", str(storage), "--set", "search.num_samples=6", "--name", "cli"],
    )
    assert result.exit_code == 0, result.output + result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "experiment_started" and kinds[-1] == "experiment_finished"
    assert kinds.count("trial_started") == 6
    finished = events[-1]
    assert finished["state"] == "completed" and finished["folder"].endswith("cli")

    listing = runner.invoke(app, ["ls", "--storage", str(storage), "--json"])
    rows = json.loads(listing.output)
    assert [r["name"] for r in rows] == ["cli"]
    assert rows[0]["state"] == "completed" and sum(rows[0]["trials"].values()) == 6

    best = runner.invoke(app, ["best", "cli", "--storage", str(storage), "--format", "json"])
    best_row = json.loads(best.output)
    assert best_row["loss"] == pytest.approx(finished["best"]["value"])
    trials = pq.read_table(Path(finished["folder"]) / "trials.parquet").to_pandas()
    assert best_row["loss"] == pytest.approx(trials["metric_best"].min())

    pasted = runner.invoke(app, ["best", "cli", "--storage", str(storage), "-n", "2"])
    documents = [yaml.safe_load(doc) for doc in pasted.output.split("---")]
    assert len(documents) == 2 and set(documents[0]["space"]) == {"x1", "x2"}

    missing = runner.invoke(app, ["best", "nope", "--storage", str(storage)])
    assert missing.exit_code == 2 and "cli" in missing.stderr


@pytest.mark.subprocess
@pytest.mark.slow
def test_installed_command_runs_the_quickstart_on_a_private_ray(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "raytuner"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run(
        [str(exe), "run", str(QUICKSTART), "--storage", str(tmp_path), "--set", "search.num_samples=4"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "experiment folder:" in done.stdout and "best loss" in done.stdout
    assert "WARNING" not in done.stdout  # Ray's log flood stays off
    folder = tmp_path / "quickstart"
    assert pq.read_table(folder / "trials.parquet").num_rows == 4
    assert json.loads((folder / "status.json").read_text())["state"] == "completed"
    bad = subprocess.run([str(exe), "validate", str(tmp_path / "nope.yaml")], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "file not found" in bad.stderr


@pytest.mark.subprocess
@pytest.mark.slow
def test_a_ctrl_c_after_the_last_event_leaves_the_exit_code_alone(tmp_path: Path) -> None:
    """The run is over once its last event is out: a Ctrl-C then (the second of two, a moment
    late) used to land in Python's teardown, where the default handler killed the process by
    SIGINT (-2) instead of leaving the run's exit code."""
    exe = Path(sys.executable).parent / "raytuner"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.Popen(
        [str(exe), "run", str(QUICKSTART), "--json", "--storage", str(tmp_path), "--set", "search.num_samples=2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if json.loads(line)["event"] == "experiment_finished":
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    # 0, or 130 if the Ctrl-C beat the command's return by a hair: the process's own word either way
    assert proc.returncode in (0, 130), (proc.returncode, err[-2000:])
    assert json.loads((tmp_path / "quickstart" / "status.json").read_text())["state"] == "completed"
