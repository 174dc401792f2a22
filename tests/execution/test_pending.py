"""Trials pending too long are explained: the watch with a fake cluster, then one real run."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from raytuner.cli.render import JsonLines, PlainLines
from raytuner.execution.events import Event, EventKind, Recorder
from raytuner.execution.pending import BUSY, UNPLACEABLE, WAITING, ClusterView, PendingWatch, explain
from raytuner.results.records import ExperimentBook
from raytuner.spec.loader import load_experiment_text


@dataclass
class Factory:
    required_resources: dict[str, float]


@dataclass
class FakeTrial:
    trial_id: str
    status: str = "PENDING"
    wanted: dict[str, float] = field(default_factory=lambda: {"CPU": 1.0})

    @property
    def placement_group_factory(self) -> Factory:
        return Factory(self.wanted)


def node(alive: bool = True, address: str = "10.0.0.1", **resources: float) -> dict[str, Any]:
    return {"Alive": alive, "NodeManagerAddress": address, "Resources": resources}


BUSY_CPU = ClusterView([node(CPU=2)], {"CPU": 0.0})


def watch(view: ClusterView = BUSY_CPU, warning_s: float = 60) -> PendingWatch:
    return PendingWatch(warning_s, cluster=lambda: view, every_s=5)


def test_a_trial_is_explained_after_the_warning_time_then_as_its_wait_doubles() -> None:
    w = watch()
    trials = [FakeTrial("a")]
    seen = {t: [e.data["pending_s"] for e in w.check(trials, now=t)] for t in range(0, 601, 5)}
    assert [t for t, shown in seen.items() if shown] == [60, 120, 240, 480]
    event = w.check(trials, now=960)[0]
    assert event.kind is EventKind.TRIAL_PENDING
    assert event.data["trial_id"] == "a" and event.data["pending_s"] == 960
    assert event.data["reason"] == BUSY and event.data["resources"] == {"CPU": 1.0}
    assert event.data["message"] == "waiting for resources: 2 of 2 CPU in use (by other trials, jobs or actors), it needs 1"


def test_checks_are_throttled_and_a_trial_that_starts_is_forgotten() -> None:
    w = watch(warning_s=1)
    trial = FakeTrial("a")
    assert w.check([trial], now=0) == []
    assert w.check([trial], now=4) == []  # within every_s: not even looked at
    assert len(w.check([trial], now=5)) == 1
    trial.status = "RUNNING"
    assert w.check([trial], now=10) == []
    trial.status = "PENDING"  # pending again (a retry): its clock starts over
    assert w.check([trial], now=15) == []
    assert len(w.check([trial], now=20)) == 1


def test_no_event_while_the_runs_own_trials_run_the_queue_moves() -> None:
    w = watch(warning_s=10)
    running, waiting = FakeTrial("r", "RUNNING"), FakeTrial("w")
    for t in range(0, 100, 5):
        assert w.check([running, waiting], now=t) == []
    running.status = "TERMINATED"  # now nothing of the run runs: counted from here
    assert w.check([running, waiting], now=100) == []  # seen running last at 95
    [event] = w.check([running, waiting], now=105)
    assert event.data["pending_s"] == 105


def test_a_request_no_live_node_can_hold_is_explained_even_while_others_run() -> None:
    view = ClusterView(
        [node(CPU=2), node(False, "10.0.0.7", CPU=8, GPU=1)],
        {"CPU": 1.0},
    )
    w = watch(view, warning_s=10)
    trials = [FakeTrial("r", "RUNNING"), FakeTrial("g", wanted={"CPU": 1, "GPU": 1})]
    w.check(trials, now=0)
    [event] = w.check(trials, now=10)
    assert event.data["reason"] == UNPLACEABLE
    assert event.data["message"] == (
        "no live node can ever hold its request (1 CPU, 1 GPU): a live node has at most 0 GPU; "
        "the node that could (10.0.0.7) is dead"
    )


def test_explain_names_a_busy_custom_resource_and_who_holds_it() -> None:
    view = ClusterView([node(CPU=4, tpu=2)], {"CPU": 3.0, "tpu": 0.0})
    reason, message = explain({"CPU": 1, "tpu": 1}, view, running=[{"CPU": 1, "tpu": 1}])
    assert reason == BUSY
    assert (
        message
        == "waiting for resources: 2 of 2 tpu in use (1 by this run's trials, 1 by other trials, jobs or actors), it needs 1"
    )


def test_explain_when_enough_is_free_blames_the_autoscaler_or_fragmentation() -> None:
    view = ClusterView([node(CPU=2), node(address="10.0.0.2", CPU=2)], {"CPU": 2.0})
    reason, message = explain({"CPU": 2}, view)
    assert reason == WAITING and "autoscaler" in message and "split across nodes" in message
    reason, message = explain({"CPU": 4}, view)
    assert reason == UNPLACEABLE and "at most 2 CPU" in message


def test_the_spec_field_defaults_to_60_and_null_turns_it_off() -> None:
    base = "name: p\ntrainable: {builtin: analytic}\nmetric: loss\nmode: min\n"
    assert load_experiment_text(base).spec.execution.pending_warning_s == 60
    assert load_experiment_text(base + "execution: {pending_warning_s: null}\n").spec.execution.pending_warning_s is None


def test_the_event_is_one_line_plain_and_one_json_object() -> None:
    event = Event(
        EventKind.TRIAL_PENDING,
        {"trial_id": "t1", "pending_s": 75.0, "reason": BUSY, "message": "waiting for resources: x", "resources": {}},
    )
    book = ExperimentBook("loss", -1.0)
    plain = io.StringIO()
    PlainLines(plain).handle(event, book)
    assert plain.getvalue().count("\n") == 1
    assert plain.getvalue().rstrip().endswith("trial t1 pending for 0:01:15: waiting for resources: x")
    lines = io.StringIO()
    JsonLines(lines).handle(event, book)
    payload = json.loads(lines.getvalue())
    assert payload["event"] == "trial_pending" and payload["reason"] == BUSY


# ---------------------------------------------------------------------------- a real run

BLOCKED = """
name: blocked
trainable: {builtin: analytic, iterations: 2}
metric: loss
mode: min
space: {x: {uniform: [-1, 1]}}
search: {num_samples: 1, seed: 3}
execution: {pending_warning_s: 1}
"""


class ReleaseOnPending(Recorder):
    """Records events; at the first trial_pending, kills the actor holding the CPUs."""

    def __init__(self, blocker: Any) -> None:
        super().__init__()
        self.blocker = blocker

    def handle(self, event: Event, book: ExperimentBook) -> None:
        super().handle(event, book)
        if event.kind is EventKind.TRIAL_PENDING and self.blocker is not None:
            import ray

            ray.kill(self.blocker)
            self.blocker = None


@pytest.mark.ray
@pytest.mark.slow
def test_a_trial_blocked_by_another_actor_is_explained_then_runs(ray_session: None, storage: Path) -> None:
    """The shared Ray has 2 CPUs and no custom resource: an actor of this test holds both CPUs."""
    import ray

    from raytuner.execution.runner import RunOptions, RunState, run_experiment

    @ray.remote(num_cpus=2)
    class Blocker:
        def ready(self) -> bool:
            return True

    blocker = Blocker.remote()  # type: ignore[attr-defined]
    ray.get(blocker.ready.remote(), timeout=30)
    recorder = ReleaseOnPending(blocker)
    try:
        experiment = load_experiment_text(BLOCKED + f"storage: {storage}\n")
        summary = run_experiment(experiment, RunOptions(), recorder)
    finally:
        if recorder.blocker is not None:
            ray.kill(recorder.blocker)
    assert summary.state is RunState.COMPLETED
    # the first explains the block; a later one may follow while the released trial's worker starts
    pending = next(e for e in recorder.events if e.kind is EventKind.TRIAL_PENDING)
    assert pending.data["reason"] == BUSY
    assert pending.data["message"] == ("waiting for resources: 2 of 2 CPU in use (by other trials, jobs or actors), it needs 1")
    assert pending.data["pending_s"] >= 1
    assert recorder.kinds().index(EventKind.TRIAL_PENDING) < recorder.kinds().index(EventKind.TRIAL_STARTED)


def test_on_a_fresh_launched_cluster_the_wait_names_the_node_type_the_autoscaler_starts() -> None:
    import yaml

    from raytuner.execution.preflight import node_types_of

    config = yaml.safe_load((Path(__file__).resolve().parents[2] / "cluster" / "aws.yaml").read_text())
    view = ClusterView([node(CPU=0)], {}, tuple(node_types_of(config)))
    reason, message = explain({"CPU": 1, "GPU": 1}, view)
    assert (reason, message) == (
        WAITING,
        "no live node can hold its request (1 CPU, 1 GPU) yet: the autoscaler can start a 'gpu_worker' node "
        "(4 CPU, 1 GPU) for it; `ray status` on the head shows whether it is starting one",
    )
    reason, message = explain({"GPU": 2}, view)
    assert reason == UNPLACEABLE
    assert message.endswith("at most 0 GPU, nor does any node type its autoscaler can start (cpu_worker, gpu_worker)")
    assert explain({"GPU": 1}, ClusterView([node(CPU=0)], {}))[0] == UNPLACEABLE  # no autoscaler: as before


def test_the_node_type_a_run_waits_for_is_one_line_under_the_pre_flight_report() -> None:
    import yaml

    from raytuner.cli.render import LiveView
    from raytuner.execution.pending import awaited_node
    from raytuner.execution.preflight import node_types_of

    config = yaml.safe_load((Path(__file__).resolve().parents[2] / "cluster" / "aws.yaml").read_text())
    gpu_worker = next(kind for kind in node_types_of(config) if kind.name == "gpu_worker")
    awaits = awaited_node({"CPU": 1, "GPU": 1}, gpu_worker)
    line = (
        "no live node holds one trial (1 CPU, 1 GPU) yet: the autoscaler can start a 'gpu_worker' node (4 CPU, 1 GPU) "
        "for it; `ray status` on the head shows whether it is starting one"
    )
    assert awaits == {"name": "gpu_worker", "resources": {"CPU": 4.0, "GPU": 1.0}, "line": line}
    data = {"name": "n", "folder": "f", "total_trials": 1, "metric": "loss", "mode": "min", "algorithm": "random",
            "scheduler": "fifo", "ray": "auto", "cluster_cpus": 0, "cluster_gpus": 0, "placement": None,
            "awaits_node": awaits}  # fmt: skip
    book = ExperimentBook("loss", -1.0)
    plain = io.StringIO()
    PlainLines(plain).handle(Event(EventKind.EXPERIMENT_STARTED, data), book)
    assert plain.getvalue().splitlines()[-1].endswith(line)
    from rich.console import Console

    live = LiveView(Console(file=(shown := io.StringIO()), width=400, force_terminal=False))
    live.handle(Event(EventKind.EXPERIMENT_STARTED, data), book)
    live.handle(Event(EventKind.EXPERIMENT_FINISHED, {}), book)
    assert line in shown.getvalue()
