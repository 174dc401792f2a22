"""A search that can no longer go on ends the run with its reason, resumable; it is not waited on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from raytuner.errors import SearchStalledError
from raytuner.execution import search_watch
from raytuner.search import SEARCHERS, total_trials
from raytuner.search.sampler import SpaceSearcher
from raytuner.spec.models import Algorithm

pytestmark = [pytest.mark.slow]


class GivesTwo(SpaceSearcher):
    """The random searcher, stuck after two trials: it gives nothing more and never finishes."""

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        return None if self._index >= 2 else super().suggest(trial_id)


def _gives_two(experiment: Any) -> GivesTwo:
    return GivesTwo.for_experiment(experiment, enumerate_choices=False, total=total_trials(experiment))


@pytest.mark.parametrize("backend", [pytest.param("ray", marks=pytest.mark.ray), "inline"])
def test_a_stalled_search_ends_the_run_with_its_reason_and_a_resume_goes_on(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from raytuner.cli import app
    from raytuner.execution.events import Recorder
    from raytuner.execution.runner import RunOptions, RunState, resume_experiment

    if backend == "ray":
        request.getfixturevalue("ray_session")
    spec = tmp_path / "stall.yaml"
    spec.write_text(
        "name: stall\ntrainable: {builtin: analytic, iterations: 2}\nmetric: loss\nmode: min\n"
        "space: {x: {uniform: [-1, 1]}}\nsearch: {algorithm: random, num_samples: 4, seed: 1}\n"
        f"execution: {{backend: {backend}}}\n"
    )
    with monkeypatch.context() as patch:
        patch.setitem(SEARCHERS, Algorithm.RANDOM, _gives_two)
        patch.setattr(search_watch, "STALL_S", 1.0)
        stalled = CliRunner().invoke(app, ["run", str(spec), "--json", "--storage", str(tmp_path / "runs")])
    assert stalled.exit_code == SearchStalledError.exit_code, stalled.output + stalled.stderr
    assert stalled.stderr.splitlines() == [
        "error: stall: the search stalled after 2 of 4 trials: none is running or waiting, and the searcher "
        "(GivesTwo) gave no new one" + (" for 1 s" if backend == "ray" else "") + "; the run is left interrupted "
        "(raytuner resume tries again)"
    ]
    folder = tmp_path / "runs" / "stall"
    status = json.loads((folder / "status.json").read_text())
    assert status["state"] == "interrupted" and "stalled" in status["error"]
    assert pq.read_table(folder / "trials.parquet").column("status").to_pylist() == ["completed"] * 2

    summary = resume_experiment(folder, RunOptions(), Recorder())  # the real searcher goes on from its state
    assert summary.state is RunState.COMPLETED
    trials = pq.read_table(folder / "trials.parquet").to_pandas()
    assert len(trials) == 4 and set(trials["status"]) == {"completed"}
    assert trials["config/x"].nunique() == 4  # the restored searcher went on; nothing was suggested twice
