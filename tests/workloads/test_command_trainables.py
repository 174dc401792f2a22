"""Command trainables: real programs (Python and plain shell) run per trial through a real Ray."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from raytuner.errors import MetricNotReportedError, SpecError
from raytuner.execution.events import Recorder
from raytuner.execution.runner import RunOptions, RunSummary, run_experiment
from raytuner.results.records import TrialRecord, TrialStatus
from raytuner.spec.loader import load_experiment_text
from raytuner.workloads.command import MetricsLineError, fill, parse_metrics

COMMANDS = Path(__file__).resolve().parents[1] / "fixtures" / "commands"


def spec(trainable: str, rest: str) -> str:
    return f"name: cmd\ntrainable: {trainable}\nmetric: loss\nmode: min\n{rest}"


def run(text: str, storage: Path) -> RunSummary:
    experiment = load_experiment_text(text + f"\nstorage: {storage}\n")
    return run_experiment(experiment, RunOptions(), Recorder())


def last_reports(summary: RunSummary) -> dict[str, dict[str, Any]]:
    rows = pq.read_table(summary.folder / "results.parquet").to_pylist()
    last: dict[str, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: r["training_iteration"]):
        last[row["trial_id"]] = row
    return last


def metric(row: dict[str, Any], name: str) -> Any:
    """A reported metric from a results.parquet row, whatever column layout the store uses."""
    if name in row:
        return row[name]
    for key in ("metrics", "metrics_json"):
        value = row.get(key)
        if isinstance(value, str):
            value = json.loads(value)
        if isinstance(value, dict) and name in value:
            return value[name]
    raise KeyError(f"{name} not in {sorted(row)}")


# ---------------------------------------------------------------------------- no Ray


def test_placeholders_fill_nested_keys_and_keep_literal_braces() -> None:
    config = {"lr": 0.001, "model": {"width": 64, "act": "relu"}, "flag": True, "tags": [1, 2]}
    assert fill("--lr={lr}", config) == "--lr=0.001"
    assert fill("{model.width}x{model.act}", config) == "64xrelu"
    assert fill("{flag} {tags} {{lr}}", config) == "true [1, 2] {lr}"
    with pytest.raises(KeyError, match="model has no key 'depth'.*width, act"):
        fill("{model.depth}", config)


def test_metrics_lines_json_and_prefixed_pairs() -> None:
    assert parse_metrics('{"loss": 0.5, "acc": 1}\n', None) == {"loss": 0.5, "acc": 1}
    assert parse_metrics("epoch 1 loss=0.5", None) is None
    assert parse_metrics("{not json}", None) is None
    assert parse_metrics("[1, 2]", None) is None
    pairs = parse_metrics("METRIC: loss=0.25, step=3 ok=false name=a nan=nan", "METRIC:")
    assert pairs is not None and pairs["loss"] == 0.25 and pairs["step"] == 3 and pairs["ok"] is False
    assert pairs["name"] == "a" and pairs["nan"] != pairs["nan"]
    assert parse_metrics('METRIC: {"loss": 1}', "METRIC:") == {"loss": 1}
    assert parse_metrics('{"loss": 1}', "METRIC:") is None  # with a prefix, only its lines count
    with pytest.raises(MetricsLineError, match="expected key=value pairs.*'oops'"):
        parse_metrics("METRIC: loss=1 oops", "METRIC:")


@pytest.mark.parametrize(
    ("line", "prefix", "fragment"),
    [
        ('{"training_iteration": 99, "loss": 1}', None, "'training_iteration' is one of Ray Tune's own result keys"),
        ('{"loss": 1, "timestamp": "12:00"}', None, "'timestamp' is one of Ray Tune's own result keys"),
        ("METRIC: loss=1 done=true", "METRIC:", "'done' is one of Ray Tune's own result keys"),
        ('METRIC: {"__duplicate__": 1}', "METRIC:", "'__duplicate__' is one of Ray Tune's own"),
        ('{"": 1, "loss": 2}', None, "a metric has an empty name"),
        ('METRIC: {" ": 1}', "METRIC:", "a metric has an empty name"),
    ],
)
def test_reports_with_ray_tunes_own_keys_or_an_empty_key_are_refused(line: str, prefix: str | None, fragment: str) -> None:
    with pytest.raises(MetricsLineError, match=re.escape(fragment)):
        parse_metrics(line, prefix)


def test_a_reported_training_iteration_fails_the_trial_with_the_reason(tmp_path: Path) -> None:
    script = tmp_path / "steps.sh"
    script.write_text('echo \'{"loss": 1}\'\necho \'{"training_iteration": 99, "loss": 0.5}\'\n')
    summary = run(
        spec(f"{{command: [sh, {script}]}}", "space: {x: 1}\nsearch: {num_samples: 1}\nexecution: {backend: inline}\n"),
        tmp_path / "runs",
    )
    (record,) = summary.trials.values()
    assert record.status is TrialStatus.ERROR and record.iterations == 1
    assert "cannot take: 'training_iteration' is one of Ray Tune's own result keys" in (record.error or "")


@pytest.mark.parametrize(
    ("trainable", "space", "fragments"),
    [
        ("{command: [python, train.py, --x, '{y}'], workdir: %s}", "{x: 1}", ("command[3]", "{y}", "it has: x")),
        ("{command: [python, train.py, --x, '{x.inner}'], workdir: %s}", "{x: 1}", ("{x.inner}",)),
        ("{command: [python, nothere.py], workdir: %s}", "{x: 1}", ("command[1]", "nothere.py", "is not in")),
        ("{command: [no-such-program-xyz], workdir: %s}", "{x: 1}", ("command[0]", "not found on PATH")),
        ("{command: [./echo_args.py], workdir: %s}", "{x: 1}", ("command[0]", "not executable")),
        ("{command: [python, train.py, '--x={x'], workdir: %s}", "{x: 1}", ("command", "lone '{'")),
        ("{command: [python, train.py], env: {LR: '{lr}'}, workdir: %s}", "{x: 1}", ("env.LR", "{lr}")),
        ("{command: [], workdir: %s}", "{x: 1}", ("trainable.command", "at least 1")),
        ("{command: [python, train.py], shell: true, workdir: %s}", "{x: 1}", ("unknown key 'shell'",)),
    ],
)
def test_validation_names_the_bad_part(trainable: str, space: str, fragments: tuple[str, ...]) -> None:
    with pytest.raises(SpecError) as caught:
        load_experiment_text(spec(trainable % COMMANDS, f"space: {space}\n"))
    message = str(caught.value)
    assert caught.value.exit_code == 2
    for fragment in fragments:
        assert fragment in message, message


def test_placeholders_in_conditional_branches_validate() -> None:
    experiment = load_experiment_text(
        spec(
            f"{{command: [python, train.py, --x, '{{opt.lr}}', --width, '{{opt.momentum}}'], workdir: {COMMANDS}}}",
            "space: {opt: {choice: [{lr: 0.1, momentum: {uniform: [0.8, 0.9]}}, {lr: 0.01}]}}\n",
        )
    )
    assert experiment.spec.trainable.command[3] == "{opt.lr}"  # type: ignore[union-attr]


# ---------------------------------------------------------------------------- through Ray


@pytest.mark.ray
@pytest.mark.slow
def test_python_command_gets_its_config_and_checkpoints(ray_session: None, storage: Path) -> None:
    summary = run(
        spec(
            f"{{command: [python, train.py, --x, '{{x}}', --width, '{{model.width}}'], workdir: {COMMANDS}}}",
            "space: {x: {grid: [0.5, 1.0, 2.0]}, model: {width: 8}}\nsearch: {algorithm: grid}\n",
        ),
        storage,
    )
    records = list(summary.trials.values())
    assert [r.status for r in records] == [TrialStatus.COMPLETED] * 3
    assert all(r.iterations == 3 for r in records)
    assert summary.book.best is not None and summary.book.best.config["x"] == 1.0
    rows = last_reports(summary)
    for record in records:
        row = rows[record.trial_id]
        assert metric(row, "x_arg") == record.config["x"] == metric(row, "config_x")
        assert metric(row, "width") == 8 and metric(row, "file_matches") == 1
        folder = Path(record.trial_dir or "")
        checkpoints = sorted(folder.glob("checkpoint_*"))
        assert checkpoints, f"no checkpoint in {folder}"
        assert json.loads((checkpoints[-1] / "state.json").read_text()) == {"step": 3}
        log = (folder / "output.log").read_text()
        assert "epoch 1 starting" in log and '"loss"' not in log  # reports are not log lines


@pytest.mark.ray
@pytest.mark.slow
def test_plain_shell_command_with_prefixed_pairs(ray_session: None, storage: Path) -> None:
    summary = run(
        spec(
            f"{{command: [sh, train.sh, '{{x}}', '3'], metrics_prefix: 'METRIC:', workdir: {COMMANDS}}}",
            "space: {x: {grid: [1, 2]}}\nsearch: {algorithm: grid}\n",
        ),
        storage,
    )
    by_x = {r.config["x"]: r for r in summary.trials.values()}
    assert by_x[1].status is TrialStatus.COMPLETED and by_x[1].iterations == 3
    assert by_x[1].best == 33 and by_x[2].best == 133  # x*x*100/3 in integer arithmetic
    log = (Path(by_x[2].trial_dir or "") / "output.log").read_text()
    assert "training step 3" in log and "[stderr] trial" in log and "METRIC" not in log
    assert {metric(row, "tag") for row in last_reports(summary).values()} == {"shell"}


@pytest.mark.ray
@pytest.mark.slow
def test_shell_metacharacters_are_literal_arguments(ray_session: None, storage: Path, tmp_path: Path) -> None:
    texts = [
        f"; touch {tmp_path}/semicolon",
        f"$(touch {tmp_path}/dollar)",
        f"`touch {tmp_path}/backtick`",
        f"a && touch {tmp_path}/and | cat > {tmp_path}/redirect 'quoted' \"double\" *",
    ]
    summary = run(
        spec(
            f"{{command: [python, echo_args.py, '{{text}}'], workdir: {COMMANDS}}}",
            f"space: {{text: {{grid: {json.dumps(texts)}}}}}\nsearch: {{algorithm: grid}}\n",
        ),
        storage,
    )
    records = list(summary.trials.values())
    assert len(records) == 4 and all(r.status is TrialStatus.COMPLETED for r in records)
    for record in records:
        argv = json.loads((Path(record.trial_dir or "") / "argv.json").read_text())
        assert argv == [record.config["text"]]
    assert {metric(row, "same") for row in last_reports(summary).values()} == {1}
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "runs") == []


@pytest.mark.ray
@pytest.mark.slow
def test_crash_records_exit_status_and_stderr_and_retries_resume(ray_session: None, storage: Path) -> None:
    summary = run(
        spec(
            f"{{command: [python, train.py, --x, '0.5', --crash, '{{crash}}'], workdir: {COMMANDS}}}",
            "space: {crash: {grid: [once, always]}}\nsearch: {algorithm: grid}\nfailure: {max_retries: 1}\n",
        ),
        storage,
    )
    by_mode = {r.config["crash"]: r for r in summary.trials.values()}
    once, always = by_mode["once"], by_mode["always"]
    assert once.status is TrialStatus.COMPLETED and once.num_failures == 1 and once.iterations == 3
    rows = last_reports(summary)
    assert metric(rows[once.trial_id], "resumed_from") == 1  # the retry read the step-1 checkpoint
    assert always.status is TrialStatus.ERROR and always.num_failures == 2
    assert "exited with status 3" in (always.error or "")
    assert "diverged at step 2" in (always.error or "")  # the stderr tail
    trials = {t["trial_id"]: t for t in pq.read_table(summary.folder / "trials.parquet").to_pylist()}
    assert "exited with status 3" in trials[always.trial_id]["error"]


@pytest.mark.ray
@pytest.mark.slow
def test_a_program_that_never_prints_the_metric(ray_session: None, storage: Path) -> None:
    with pytest.raises(MetricNotReportedError) as caught:
        run(spec(f"{{command: [python, chatty.py, keys], workdir: {COMMANDS}}}", "search: {num_samples: 2}\n"), storage)
    assert "accuracy, val_loss" in str(caught.value) and "'loss'" in str(caught.value)

    summary = run(spec(f"{{command: [python, chatty.py, text], workdir: {COMMANDS}}}", "search: {num_samples: 1}\n"), storage)
    (record,) = summary.trials.values()
    error = record.error or ""
    assert record.status is TrialStatus.ERROR
    assert "exited with status 0 without printing any metrics" in error
    assert "epoch 2 loss=0.50" in error and "metrics_prefix" in error and "warming down" in error


@pytest.mark.ray
@pytest.mark.slow
def test_asha_stops_programs_with_sigterm(ray_session: None, storage: Path) -> None:
    summary = run(
        spec(
            f"{{command: [python, train.py, --x, '{{x}}', --steps, '12', --sleep, '0.1'], stop_grace_s: 5, workdir: {COMMANDS}}}",
            "space: {x: {grid: [1.0, 5.0, 1.1, 6.0, 7.0]}}\nsearch: {algorithm: grid, max_concurrent: 2}\n"
            "scheduler: {type: asha, max_t: 12, grace_period: 2, reduction_factor: 3}\n",
        ),
        storage,
    )
    records: list[TrialRecord] = list(summary.trials.values())
    stopped = [r for r in records if r.status is TrialStatus.STOPPED]
    assert stopped, [(r.config, r.iterations) for r in records]
    for record in stopped:
        assert record.iterations < 12
        marker = Path(record.trial_dir or "") / "sigterm.txt"
        assert marker.is_file(), f"{record.config} stopped at {record.iterations} without SIGTERM"
    finished = [r for r in records if r.status is not TrialStatus.STOPPED]
    assert all(r.iterations == 12 for r in finished)
    assert not any((Path(r.trial_dir or "") / "sigterm.txt").exists() for r in finished)
