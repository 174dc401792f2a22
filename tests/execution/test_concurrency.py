"""Trials run side by side when the cluster has room, whatever the searcher.

Ray Tune keeps one trial pending at a time for a searcher of its own kind unless told
otherwise; raytuner's searchers are all of that kind, so this would run every experiment
without ``search.max_concurrent`` one trial after another.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from raytuner.execution.events import Recorder
from raytuner.execution.runner import RunOptions, run_experiment
from raytuner.spec.loader import load_experiment_text

pytestmark = [pytest.mark.ray]

SPEC = """
name: side-by-side
trainable: {{builtin: analytic, objective: sphere, iterations: 2, sleep_s: 0.5}}
metric: loss
mode: min
space: {{x: {{uniform: [-1, 1]}}}}
search: {{algorithm: {algorithm}, num_samples: 4, seed: 1}}
resources: {{cpu: 1}}
storage: {storage}
"""


@pytest.mark.parametrize("algorithm", ["random", "optuna_tpe"])
def test_two_cpus_run_two_trials_at_once(ray_session: None, tmp_path: Path, algorithm: str) -> None:
    summary = run_experiment(load_experiment_text(SPEC.format(algorithm=algorithm, storage=tmp_path)), RunOptions(), Recorder())
    rows = pq.read_table(summary.folder / "trials.parquet", columns=["started_at", "ended_at"]).to_pylist()
    assert len(rows) == 4
    spans = sorted((row["started_at"], row["ended_at"]) for row in rows)
    overlaps = sum(1 for (_, end), (start, _) in zip(spans, spans[1:], strict=False) if start < end)
    assert overlaps >= 2, spans  # one after another would overlap nowhere
