"""Every search algorithm x every scheduler over a space with every node type, on real Ray."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from raytuner.execution.events import EventKind, Recorder
from raytuner.execution.runner import RunOptions, RunState, run_experiment
from raytuner.space.points import complete_point
from raytuner.spec.loader import load_experiment_text

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SPACE = """
space:
  lr: {loguniform: [1.0e-4, 1.0e-1]}
  width: {uniform: [-2, 2]}
  q: {quniform: [0, 1, 0.25]}
  ql: {qloguniform: [1, 100, 1]}
  layers: {randint: [1, 4]}
  batch: {qrandint: [16, 64, 16]}
  hidden: {lograndint: [8, 256]}
  noise: {normal: [0, 0.1]}
  qn: {qnormal: [0, 1, 0.5]}
  act: {choice: [relu, tanh]}
  seed: {grid: [1, 2]}
  fixed: 3
  nested: {a: {b: {uniform: [0, 1]}}, c: hello}
  optimizer:
    choice:
      - name: sgd
        momentum: {uniform: [0.8, 0.99]}
        schedule: {choice: [{kind: step, gamma: {uniform: [0.1, 0.5]}}, {kind: none}]}
      - {name: adam, betas: [0.9, 0.999]}
"""


def spec_text(algorithm: str, scheduler: str, storage: Path) -> str:
    scheduler_block = {
        "fifo": "{type: fifo}",
        "asha": "{type: asha, max_t: 4, grace_period: 1, reduction_factor: 2}",
        "hyperband": "{type: hyperband, max_t: 4, reduction_factor: 2}",
        "median": "{type: median, grace_period: 1, min_samples_required: 2}",
    }[scheduler]
    samples = 2 if algorithm == "grid" else 6
    return f"""
name: m-{algorithm}-{scheduler}
trainable: {{builtin: analytic, objective: sphere, iterations: 4}}
metric: loss
mode: min
search: {{algorithm: {algorithm}, num_samples: {samples}, seed: 3, max_concurrent: 2}}
scheduler: {scheduler_block}
storage: {storage}
{SPACE}
"""


@pytest.mark.parametrize("scheduler", ["fifo", "asha", "hyperband", "median"])
@pytest.mark.parametrize("algorithm", ["random", "grid", "hyperopt"])
def test_every_algorithm_with_every_scheduler(ray_session: None, storage: Path, algorithm: str, scheduler: str) -> None:
    experiment = load_experiment_text(spec_text(algorithm, scheduler, storage))
    recorder = Recorder()
    summary = run_experiment(experiment, RunOptions(), recorder)

    expected = {"random": 6 * 2, "grid": 2 * 2 * 2 * 3, "hyperopt": 6}[algorithm]
    assert summary.state is RunState.COMPLETED
    assert len(summary.trials) == expected
    assert all(r.status.finished and r.status.value != "error" for r in summary.trials.values())

    rng = np.random.default_rng(0)
    for record in summary.trials.values():
        config = record.config
        # every configuration is one the space can produce, conditional branches included
        assert complete_point(experiment.space, config, rng) == config
        assert isinstance(config["layers"], int) and 1 <= config["layers"] < 4
        assert config["batch"] % 16 == 0 and 16 <= config["batch"] <= 64
        assert 8 <= config["hidden"] < 256
        assert config["fixed"] == 3 and config["nested"]["c"] == "hello"
        if config["optimizer"]["name"] == "sgd":
            assert 0.8 <= config["optimizer"]["momentum"] <= 0.99
        else:
            assert config["optimizer"] == {"name": "adam", "betas": [0.9, 0.999]}

    if algorithm == "grid":
        seen = {
            (c["seed"], c["act"], c["optimizer"]["name"], c["optimizer"].get("schedule", {}).get("kind"))
            for c in (r.config for r in summary.trials.values())
        }
        assert len(seen) == 2 * 2 * 3  # every grid point, choices and branches enumerated

    trials = pq.read_table(summary.folder / "trials.parquet")
    results = pq.read_table(summary.folder / "results.parquet")
    assert trials.num_rows == expected
    assert results.num_rows == summary.book.reports
    assert trials.schema.field("config/layers").type == "int64"
    assert trials.schema.field("config/optimizer/momentum").type == "double"
    assert trials.schema.field("config/act").type == "string"
    iterations = sum(trials.column("iterations").to_pylist())
    assert iterations == results.num_rows
    if scheduler == "asha" and algorithm != "grid":
        assert iterations < expected * 4  # early stopping cut some trials short
    kinds = recorder.kinds()
    assert kinds[0] is EventKind.EXPERIMENT_STARTED and kinds[-1] is EventKind.EXPERIMENT_FINISHED
