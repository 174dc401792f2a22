"""The API keywords the CLI runs through: a listener of the run's events, ``last_run``, the plan's objectives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ray import tune

import raytuner
from raytuner.execution.events import Event, EventKind
from raytuner.results.records import ExperimentBook


class Recorder:
    def __init__(self) -> None:
        self.kinds: list[EventKind] = []

    def handle(self, event: Event, book: ExperimentBook) -> None:
        self.kinds.append(event.kind)


def spec(train: Any, storage: Path, samples: int) -> dict[str, Any]:
    return {
        "name": "listened",
        "storage": str(storage),
        "trainable": {"function": train},
        "metric": "loss",
        "mode": "min",
        "space": {"x": {"uniform": [-2.0, 2.0]}},
        "search": {"algorithm": "random", "num_samples": samples, "seed": 1},
    }


def test_a_listener_gets_every_event_of_run_and_extend_and_last_run_says_how_they_ended(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def train(config: dict[str, Any]) -> None:
        for _ in range(2):
            tune.report({"loss": config["x"] ** 2})

    heard = Recorder()
    experiment = raytuner.run(spec(train, tmp_path / "runs", 2), inline=True, cpus=1, listener=heard)

    assert capsys.readouterr().out == ""  # the listener replaces the display: nothing printed
    assert heard.kinds[0] is EventKind.EXPERIMENT_STARTED and heard.kinds[-1] is EventKind.EXPERIMENT_FINISHED
    assert heard.kinds.count(EventKind.TRIAL_STARTED) == 2
    run = experiment.last_run
    assert run is not None and run.state.value == "completed" and run.exit_code == 0
    assert run.location == experiment.folder and run.total_trials == 2
    assert raytuner.open(experiment.folder).last_run is None

    more = Recorder()
    extended = experiment.extend(1, listener=more)
    assert more.kinds.count(EventKind.TRIAL_STARTED) == 1 and more.kinds[-1] is EventKind.EXPERIMENT_FINISHED
    assert extended.last_run is not None and extended.last_run.total_trials == 3


def test_a_plan_lists_each_objective_with_its_mode() -> None:
    plan = raytuner.validate(
        {
            "name": "two",
            "trainable": {"builtin": "analytic", "objective": "zdt1"},
            "metric": ["f1", "f2"],
            "mode": ["min", "min"],
            "space": {"x1": {"uniform": [0, 1]}, "x2": {"uniform": [0, 1]}},
            "search": {"algorithm": "random", "num_samples": 2},
        }
    )
    assert plan.objectives == (("f1", "min"), ("f2", "min"))
