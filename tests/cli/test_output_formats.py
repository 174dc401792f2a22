"""What ls, show, best and compare print for scripts and pipes, and ``run -q``.

Outside a terminal (CliRunner's output is not one) a table keeps every row on one line and
every cell whole; ``--format tsv`` and ``--format json`` are read back as a script would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from raytuner.cli import app
from raytuner.execution.events import Recorder
from raytuner.execution.runner import RunOptions, run_experiment
from raytuner.spec.loader import load_experiment_text

runner = CliRunner()

LONG = "acc-hyperopt-conditional-space-with-a-long-name"  # wider than 80 columns with the rest of a row
SEARCH = """
name: {name}
trainable: {{builtin: analytic, objective: sphere, iterations: 2}}
metric: loss
mode: min
space: {{x: {{uniform: [-2, 2]}}, y: {{uniform: [-2, 2]}}}}
search: {{algorithm: random, num_samples: {samples}, seed: {seed}}}
execution: {{backend: inline}}
"""
NONFINITE = """
name: nonfinite
trainable: {function: "user_trainables:reports_nan_and_inf"}
metric: loss
mode: min
space: {x: {grid: [-1.0, 0.5, 2.0]}}
search: {algorithm: grid}
execution: {backend: inline}
"""
FRONT = """
name: front
trainable: {builtin: analytic, objective: zdt1, iterations: 2}
metric: [f1, f2]
mode: [min, min]
space: {x1: {uniform: [0, 1]}, x2: {uniform: [0, 1]}}
search: {algorithm: random, num_samples: 6, seed: 2}
execution: {backend: inline}
"""
PIPE = {"COLUMNS": "80", "TTY_COMPATIBLE": None, "FORCE_COLOR": None}  # not a terminal, whatever runs the tests


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Quick inline experiments: one with a long name and twelve trials whose ids share their
    first nine characters, a small one, one whose losses are NaN and infinite, and one with
    two metrics (a Pareto front)."""
    storage = tmp_path_factory.mktemp("runs")
    for text in (
        SEARCH.format(name=LONG, samples=12, seed=3),
        SEARCH.format(name="small", samples=3, seed=4),
        NONFINITE,
        FRONT,
    ):
        run_experiment(load_experiment_text(text + f"\nstorage: {storage}\n"), RunOptions(num_cpus=2), Recorder())
    return storage


def invoke(*args: str, env: dict[str, Any] | None = None) -> str:
    result = runner.invoke(app, list(args), env=env or PIPE)
    assert result.exit_code == 0, result.output + result.stderr
    return result.stdout


def strict_json(text: str) -> Any:
    """json.loads that refuses NaN and Infinity, as strict parsers (jq, JavaScript) do."""

    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def tsv(text: str) -> list[dict[str, str]]:
    header, *lines = text.rstrip("\n").split("\n")
    columns = header.split("\t")
    rows = [line.split("\t") for line in lines]
    assert all(len(row) == len(columns) for row in rows), text
    return [dict(zip(columns, row, strict=True)) for row in rows]


def test_ls_through_a_pipe_keeps_a_long_name_whole_on_one_line(runs: Path) -> None:
    out = invoke("ls", "--storage", str(runs))
    rows = [line for line in out.splitlines() if LONG in line]
    assert len(rows) == 1 and "completed" in rows[0] and "12 completed" in rows[0]
    assert sum("small" in line for line in out.splitlines()) == 1
    assert str(runs) in out.splitlines()[0]  # the title, on its own line too


def _ids(runs: Path) -> list[str]:
    return [row["trial_id"] for row in json.loads(invoke("show", LONG, "--storage", str(runs), "--json"))]


def test_show_through_a_pipe_keeps_every_trial_id_whole(runs: Path) -> None:
    ids = _ids(runs)
    assert len(set(ids)) == 12 and len({i[:9] for i in ids}) == 1  # cut to nine characters, they would read the same
    lines = invoke("show", LONG, "--storage", str(runs)).splitlines()
    for trial_id in ids:
        assert sum(trial_id in line for line in lines) == 1
    assert sum(LONG in line for line in lines) == 1  # the title is not wrapped either


def test_on_a_narrow_terminal_trial_ids_and_names_stay_whole(runs: Path) -> None:
    terminal = {"COLUMNS": "40", "TTY_COMPATIBLE": "1", "NO_COLOR": "1"}
    lines = invoke("show", LONG, "--storage", str(runs), env=terminal).splitlines()
    for trial_id in _ids(runs):
        assert sum(trial_id in line for line in lines) == 1
    listing = invoke("ls", "--storage", str(runs), env=terminal)
    assert LONG in listing and "small" in listing


def _check_ls(rows: list[dict[str, Any]]) -> None:
    assert {row["name"] for row in rows} == {LONG, "small", "nonfinite", "front"}


def _check_show(rows: list[dict[str, Any]]) -> None:
    assert len(rows) == 3 and {row["status"] for row in rows} == {"completed"}
    assert {str(row["config/x"]) for row in rows} == {"-1.0", "0.5", "2.0"}


def _check_best(rows: list[dict[str, Any]]) -> None:
    assert rows[0]["trial_id"] and float(rows[0]["loss"]) == pytest.approx(0.5)


def _check_front(rows: list[dict[str, Any]]) -> None:
    assert rows and all(set(row) == {"trial_id", "status", "f1", "f2", "iterations", "config"} for row in rows)


def _check_compare(rows: list[dict[str, Any]]) -> None:
    assert [row["name"] for row in rows] == ["small", LONG, "nonfinite"]


COMMANDS = {
    "ls": ([], _check_ls),
    "show": (["show", "nonfinite"], _check_show),
    "best": (["best", "nonfinite", "-n", "3"], _check_best),
    "best-front": (["best", "front"], _check_front),
    "compare": (["compare", "small", LONG, "nonfinite"], _check_compare),
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_each_format_reads_back(runs: Path, command: str) -> None:
    args, check = COMMANDS[command]
    args = args or ["ls"]
    storage = ["--storage", str(runs)]
    table = invoke(*args, *storage, "--format", "table")
    assert "┃" in table and "\t" not in table

    rows = tsv(invoke(*args, *storage, "--format", "tsv"))
    assert "┃" not in json.dumps(rows)
    check(rows)

    parsed = strict_json(invoke(*args, *storage, "--format", "json"))  # NaN and infinities are null
    check(parsed["experiments"] if command == "compare" else parsed)
    assert strict_json(invoke(*args, *storage, "-f", "json")) == parsed
    if not command.startswith("best"):  # --json stays the older spelling of --format json
        assert strict_json(invoke(*args, *storage, "--json")) == parsed


def test_show_json_has_null_where_the_values_are_not_finite(runs: Path) -> None:
    rows = strict_json(invoke("show", "nonfinite", "--storage", str(runs), "-f", "json", "-c", "config/x,last/loss"))
    assert {row["config/x"]: row["last/loss"] for row in rows} == {-1.0: None, 0.5: 0.5, 2.0: None}
    lines = tsv(invoke("show", "nonfinite", "--storage", str(runs), "-f", "tsv", "-c", "config/x,last/loss"))
    assert {row["config/x"]: row["last/loss"] for row in lines} == {"-1.0": "nan", "0.5": "0.5", "2.0": "inf"}


def test_json_and_another_format_together_is_a_usage_error(runs: Path) -> None:
    result = runner.invoke(app, ["ls", "--storage", str(runs), "--json", "--format", "tsv"], env=PIPE)
    assert result.exit_code == 2 and "--json and --format tsv" in result.stderr


def test_compare_takes_three_experiments(runs: Path) -> None:
    compared = strict_json(invoke("compare", "small", LONG, "nonfinite", "--storage", str(runs), "--json"))
    sides = compared["experiments"]
    assert [side["name"] for side in sides] == ["small", LONG, "nonfinite"]
    values = {side["name"]: side["best_value"] for side in sides}
    best = min(values, key=lambda name: values[name])
    assert next(side for side in sides if side["name"] == best)["rank"] == 1
    assert sorted(side["rank"] for side in sides) == [1, 2, 3]
    assert all(len(d["values"]) == 3 for d in compared["config"] + compared["spec"])
    assert "left" not in compared and "better" not in compared  # the two-experiment keys only for two
    table = invoke("compare", "small", LONG, "nonfinite", "--storage", str(runs))
    head = next(line for line in table.splitlines() if LONG in line)
    assert "small" in head and "nonfinite" in head and "(best)" in head

    one = runner.invoke(app, ["compare", "small", "--storage", str(runs)], env=PIPE)
    assert one.exit_code == 2 and "two or more" in one.stderr


def test_run_quiet_prints_only_the_summary(runs: Path, tmp_path: Path) -> None:
    spec = tmp_path / "quiet.yaml"
    spec.write_text(SEARCH.format(name="quiet", samples=3, seed=5))
    result = runner.invoke(app, ["run", str(spec), "-q", "--storage", str(tmp_path / "runs")], env=PIPE)
    assert result.exit_code == 0, result.output + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].strip() == "quiet: top 3 of 3 trials"  # the summary table's title comes first
    assert not any(line.startswith("[") for line in lines)  # no event line ([0:00:01] trial ... completed)
    assert "completed in" in result.stdout and lines[-1] == f"experiment folder: {tmp_path / 'runs' / 'quiet'}"

    events = runner.invoke(app, ["run", str(spec), "-q", "--json", "--storage", str(tmp_path / "runs"), "--name", "q2"], env=PIPE)
    assert events.exit_code == 0, events.output + events.stderr
    assert [json.loads(line)["event"] for line in events.stdout.splitlines()] == ["experiment_finished"]

    failing = ["--set", "trainable.fail_at=2", "--name", "q3"]
    failed = runner.invoke(app, ["run", str(spec), "-q", "--storage", str(tmp_path / "runs"), *failing], env=PIPE)
    reported = [line for line in failed.stderr.splitlines() if " failed: " in line]
    assert len(reported) == 3 and all(line.startswith("trial ") for line in reported), failed.stderr
    assert " failed: " not in failed.stdout and "3 error" in failed.stdout  # the summary counts them

    both = runner.invoke(app, ["run", str(spec), "-q", "-v", "--storage", str(tmp_path / "runs")], env=PIPE)
    assert both.exit_code == 2 and "-q" in both.stderr and "-v" in both.stderr
