"""What rankings count: trials that did not fail and whose value is finite, in every place
that ranks (the run's book and summary, ``best``, ``ls``, reports), and JSON without NaN or
Infinity wherever raytuner prints it."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from raytuner.cli import app
from raytuner.results.pareto import front_of_rows
from raytuner.results.records import ExperimentBook, TrialRecord, TrialStatus, rankable

runner = CliRunner()


def strict(text: str) -> Any:
    """JSON as strict parsers read it: NaN and Infinity are refused."""

    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def report(book: ExperimentBook, trial_id: str, loss: float) -> TrialRecord:
    record = book.trials.setdefault(trial_id, TrialRecord(trial_id, {"id": trial_id}, status=TrialStatus.RUNNING))
    record.iterations += 1
    if record.observe(book.metric, book.sign, {"loss": loss}, record.iterations):
        book.consider(record)
    return record


def test_the_best_leaves_a_trial_that_diverges_or_fails() -> None:
    book = ExperimentBook("loss", -1.0)
    report(book, "a", 0.5)
    b = report(book, "b", 0.1)
    c = report(book, "c", 0.3)
    assert book.best is not None and book.best.trial_id == "b"
    report(book, "b", -math.inf)  # diverged: its best is -inf, no value to rank by
    assert b.best == -math.inf and book.best is not None and book.best.trial_id == "c"
    c.status = TrialStatus.ERROR
    book.withdraw(c)
    assert book.best is not None and book.best.trial_id == "a"
    report(book, "d", math.nan)
    assert [r.trial_id for r in book.ranked()] == ["a"]
    assert not rankable("completed", math.inf) and not rankable("error", 0.1) and rankable("stopped", 0.1)


def test_the_pareto_front_leaves_out_failed_trials_and_non_finite_values() -> None:
    objectives = [("loss", "min"), ("size", "min")]
    rows = [
        {"status": "completed", "last/loss": 0.5, "last/size": 5.0},
        {"status": "error", "last/loss": 0.1, "last/size": 1.0},
        {"status": "completed", "last/loss": -math.inf, "last/size": 1.0},
        {"status": "completed", "last/loss": 0.2, "last/size": math.nan},
    ]
    assert front_of_rows(rows, objectives) == [True, False, False, False]


def test_a_diverged_trial_is_not_the_best_and_json_output_stays_json(tmp_path: Path) -> None:
    """x=0.1 reports -Infinity (diverged): the best is x=0.5 in the run's events and status,
    ``best``, ``ls`` and the report; ``best --include-failed`` shows it with null."""
    spec = tmp_path / "diverges.yaml"
    spec.write_text(
        f"""
name: diverges
trainable: {{function: "user_trainables:diverges"}}
metric: loss
mode: min
space: {{x: {{grid: [0.1, 0.5, 0.9]}}}}
search: {{algorithm: grid}}
execution: {{backend: inline}}
storage: {tmp_path / "runs"}
"""
    )
    result = runner.invoke(app, ["run", str(spec), "--json", "--cpus", "2"])
    assert result.exit_code == 0, result.output + result.stderr
    events = [strict(line) for line in result.stdout.splitlines()]
    finished = events[-1]
    assert finished["event"] == "experiment_finished" and finished["best"]["config"] == {"x": 0.5}
    assert finished["best"]["value"] == 0.5 and finished["failed"] == 0 and finished["errors"] is None
    folder = Path(finished["folder"])
    assert json.loads((folder / "status.json").read_text())["best"]["value"] == 0.5

    runs = str(tmp_path / "runs")
    best = strict(runner.invoke(app, ["best", "diverges", "--storage", runs, "-f", "json"]).stdout)
    assert best["loss"] == 0.5 and best["config"] == {"x": 0.5}
    every = runner.invoke(app, ["best", "diverges", "--storage", runs, "-f", "json", "-n", "3", "--include-failed"])
    assert [(row["config"]["x"], row["loss"]) for row in strict(every.stdout)] == [(0.1, None), (0.5, 0.5), (0.9, 0.9)]
    yaml_text = runner.invoke(app, ["best", "diverges", "--storage", runs]).stdout
    assert "loss = 0.5 (min)" in yaml_text
    shown = strict(runner.invoke(app, ["show", "diverges", "--storage", runs, "--json"]).stdout)
    assert {row["config/x"]: row["metric_best"] for row in shown} == {0.1: None, 0.5: 0.5, 0.9: 0.9}
    assert strict(runner.invoke(app, ["ls", "--storage", runs, "--json"]).stdout)[0]["best"] == 0.5

    from raytuner.results.report.data import load

    chosen = load(folder).best_trial
    assert chosen is not None and chosen.config == {"x": 0.5}
