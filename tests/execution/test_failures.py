"""Failures, stop conditions, user trainables and resources, through a real local Ray."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from raytuner.errors import MetricNotReportedError, SpecError
from raytuner.execution.events import EventKind, Recorder
from raytuner.execution.runner import RunOptions, RunState, run_experiment
from raytuner.results.records import TrialStatus
from raytuner.spec.loader import load_experiment_text

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def run(text: str, storage: Path, overrides: list[str] | None = None):  # type: ignore[no-untyped-def]
    experiment = load_experiment_text(text + f"\nstorage: {storage}\n", overrides=overrides or [])
    recorder = Recorder()
    return run_experiment(experiment, RunOptions(), recorder), recorder


ANALYTIC = """
name: fail
trainable: {builtin: analytic, iterations: 4, fail_at: 3}
metric: loss
mode: min
space: {x: {uniform: [-1, 1]}}
search: {algorithm: random, num_samples: 3, seed: 1}
"""


def test_a_trainable_that_raises_is_recorded_and_the_experiment_goes_on(ray_session: None, storage: Path) -> None:
    summary, recorder = run(ANALYTIC, storage, ["failure.max_retries=1"])
    assert summary.state is RunState.COMPLETED
    records = list(summary.trials.values())
    assert len(records) == 3
    assert all(r.status is TrialStatus.ERROR for r in records)
    assert all(r.num_failures == 2 for r in records)  # the first try and one retry
    assert all("failed at iteration 3" in (r.error or "") for r in records)
    assert recorder.kinds().count(EventKind.TRIAL_RETRY) == 3
    trials = pq.read_table(summary.folder / "trials.parquet").to_pylist()
    assert {t["status"] for t in trials} == {"error"}
    assert all("RuntimeError" in t["error"] and "fail_at=3" in t["error"] for t in trials)


class _Collect(logging.Handler):
    """What Ray's loggers hand to their handlers (the terminal, outside pytest), formatted."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def ray_logs() -> Iterator[_Collect]:
    collect = _Collect()
    logging.getLogger("ray").addHandler(collect)
    try:
        yield collect
    finally:
        logging.getLogger("ray").removeHandler(collect)


def test_user_function_errors_only_fail_their_trials(ray_session: None, storage: Path, ray_logs: _Collect) -> None:
    summary, _ = run(
        """
name: boom
trainable: {function: "user_trainables:boom"}
metric: loss
mode: min
space: {x: {grid: [-1.0, -0.5, 0.5, 1.0]}}
search: {algorithm: grid}
""",
        storage,
    )
    statuses = {r.config["x"]: r.status for r in summary.trials.values()}
    assert statuses == {
        -1.0: TrialStatus.COMPLETED,
        -0.5: TrialStatus.COMPLETED,
        0.5: TrialStatus.ERROR,
        1.0: TrialStatus.ERROR,
    }
    errors = [r.error for r in summary.trials.values() if r.error]
    assert all("ValueError" in e and "refuses it" in e for e in errors)
    assert summary.book.best is not None and summary.book.best.value == 0.25
    # without -v, Ray Tune's tracebacks stay out of the terminal: they are in each trial's error.txt
    logged = "\n".join(ray_logs.lines)
    assert "Traceback" not in logged and "Trial task failed" not in logged, logged
    assert "Trials did not complete" not in logged, logged
    tracebacks = [path.read_text() for path in summary.folder.glob("*/error.txt")]
    assert len(tracebacks) == 2 and all('user_trainables.py", line' in text and "refuses it" in text for text in tracebacks)


def test_a_metric_never_reported_stops_the_run_and_leaves_nothing(ray_session: None, storage: Path) -> None:
    with pytest.raises(MetricNotReportedError) as caught:
        run(
            """
name: nometric
trainable: {function: "user_trainables:wrong_metric"}
metric: val_accuracy
mode: max
space: {x: {uniform: [0, 1]}}
search: {num_samples: 8}
""",
            storage,
        )
    message = str(caught.value)
    assert "val_accuracy" in message and "accuracy, val_loss" in message
    assert caught.value.exit_code == 2
    assert not (storage / "nometric").exists()


def test_stop_conditions_and_class_trainables(ray_session: None, storage: Path) -> None:
    summary, _ = run(
        """
name: stops
trainable: {function: "user_trainables:quadratic"}
metric: loss
mode: min
space: {x: {grid: [1.0, 3.0]}}
search: {algorithm: grid}
stop:
  iterations: 4
  metrics: {loss: {at_most: 0.3}}
""",
        storage,
    )
    by_x = {r.config["x"]: r for r in summary.trials.values()}
    assert by_x[1.0].iterations == 4  # loss = 1/t reaches 0.25 <= 0.3 at t=4
    assert by_x[3.0].iterations == 4  # stopped by the iteration limit, not the threshold
    assert all(r.status is TrialStatus.COMPLETED for r in by_x.values())

    summary, _ = run(
        """
name: counter
trainable: {function: "user_trainables:Counter"}
metric: loss
mode: min
space: {x: {uniform: [-1, 1]}}
search: {num_samples: 4, seed: 2}
""",
        storage,
    )
    assert [r.iterations for r in summary.trials.values()] == [3, 3, 3, 3]
    # a class that ends itself with done=True completed; it was not stopped early
    assert all(r.status is TrialStatus.COMPLETED for r in summary.trials.values())


def test_checkpoints_are_kept_as_configured(ray_session: None, storage: Path) -> None:
    summary, _ = run(
        """
name: ckpt
trainable: {builtin: analytic, iterations: 6}
metric: loss
mode: min
space: {x: {uniform: [-1, 1]}}
search: {num_samples: 2, seed: 5}
checkpoint: {every: 2, keep: 1}
""",
        storage,
    )
    for record in summary.trials.values():
        folders = sorted(Path(record.trial_dir or "").glob("checkpoint_*"))
        assert len(folders) == 1, folders
        assert (folders[0] / "state.json").read_text().strip() == '{"iteration": 6}'


def test_resources_no_node_can_hold_are_refused_before_any_trial(ray_session: None, storage: Path) -> None:
    with pytest.raises(SpecError) as caught:
        run(ANALYTIC, storage, ["resources.gpu=1"])
    assert "resources.gpu" in str(caught.value) and "GPU" in str(caught.value)
    with pytest.raises(SpecError, match="custom.tpu"):
        run(ANALYTIC, storage, ["resources.custom={tpu: 1}"])
    assert not (storage / "fail").exists()
