"""A user's script of the Python API, checked by ``mypy --strict`` (tests/api/test_typing.py)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from ray import tune

import raytuner


def train(config: dict[str, Any]) -> None:
    tune.report({"loss": (config["x"] - 1.0) ** 2})


def tune_and_pick(storage: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "typed",
        "trainable": {"function": train},
        "metric": "loss",
        "mode": "min",
        "space": {"x": {"uniform": [-2.0, 2.0]}},
    }
    plan: raytuner.Plan = raytuner.validate(spec, overrides={"search.num_samples": 3})
    print(plan.trials, plan.notes)
    try:
        experiment: raytuner.Experiment = raytuner.run(
            spec, overrides=["search.num_samples=3"], storage=storage, inline=True, progress=False
        )
    except raytuner.SpecError as error:
        print(error.location.path, error.message)
        raise
    trials: pa.Table = experiment.trials()
    print(trials.num_rows, experiment.state, experiment.folder)
    best: list[raytuner.Trial] = experiment.best(1)
    opened = raytuner.open(experiment.name, storage=storage)
    print(opened.results().num_rows, opened.lineage().num_rows, opened.spec)
    return best[0].config


def hand_over(experiment: raytuner.Experiment) -> str:
    found: raytuner.CheckpointInfo = experiment.best_checkpoint(which="last")
    copied = experiment.copy_checkpoint("model", found.trial_id)
    return f"{found.location} ({found.metric} = {found.value}) -> {copied.resolve()}"
