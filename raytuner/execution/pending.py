"""Explaining trials that stay PENDING: Ray Tune waits for resources forever, silently.

A trial waits while the run's own trials hold the resources: that is queueing, and says
nothing. When no trial of the run is running and a trial has waited longer than
``execution.pending_warning_s``, or when no live node can ever hold its request, the
:class:`PendingWatch` says why, from Ray's view of the cluster: no live node can hold
the request (the node that could has died) nor any node type the cluster's autoscaler can
start, a resource is in use by other trials, jobs or actors, or Ray has yet to place it
(the autoscaler is starting a node of a type that holds it, resources split across nodes).
Each trial is explained once, then again each time its wait doubles.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from raytuner.execution.events import Event, EventKind
from raytuner.execution.preflight import NodeType, fits_a_node, show_resources

CHECK_EVERY_S = 5.0

UNPLACEABLE = "unplaceable"  # no live node, nor a node type of the autoscaler, can ever hold the request
BUSY = "busy"  # a resource the request needs is in use
WAITING = "waiting"  # enough is free, or the autoscaler can start a node for it; not placed yet


@dataclass(frozen=True)
class ClusterView:
    """What Ray says about the cluster: ``ray.nodes()``, ``ray.available_resources()`` and
    the node types its autoscaler can start (None: no autoscaler known)."""

    nodes: list[dict[str, Any]]
    available: dict[str, float]
    node_types: tuple[NodeType, ...] | None = None


def live_cluster() -> ClusterView:
    import ray

    from raytuner.execution.preflight import autoscaler_node_types

    types = autoscaler_node_types()
    return ClusterView(list(ray.nodes()), dict(ray.available_resources()), None if types is None else tuple(types))


@dataclass
class _Waiting:
    since: float  # when the watch first saw it pending
    warnings: int = 0


@dataclass
class PendingWatch:
    """Events for trials pending too long; call :meth:`check` often (it throttles itself)."""

    warning_s: float
    cluster: Callable[[], ClusterView] = live_cluster
    every_s: float = CHECK_EVERY_S
    _waiting: dict[str, _Waiting] = field(default_factory=dict)
    _moving_at: float | None = None  # the last check that saw a trial of the run running
    _checked_at: float | None = None

    def check(self, trials: Iterable[Any], now: float | None = None) -> list[Event]:
        now = time.monotonic() if now is None else now
        if self._checked_at is not None and now - self._checked_at < self.every_s:
            return []
        trials = list(trials)
        pending = [t for t in trials if str(t.status) == "PENDING"]
        if pending:  # nothing pending: look again at the next step
            self._checked_at = now
        running = [t for t in trials if str(t.status) == "RUNNING"]
        if running:
            self._moving_at = now
        for gone in set(self._waiting) - {t.trial_id for t in pending}:
            del self._waiting[gone]
        due = []
        for trial in pending:
            waiting = self._waiting.setdefault(trial.trial_id, _Waiting(now))
            if now - waiting.since >= self.warning_s * 2**waiting.warnings:
                due.append((trial, waiting))
        if not due:
            return []
        view = self.cluster()
        events = []
        for trial, waiting in due:
            wanted = request_of(trial)
            reason, message = explain(wanted, view, [request_of(t) for t in running])
            stalled = now - max(waiting.since, waiting.since if self._moving_at is None else self._moving_at)
            if reason != UNPLACEABLE and stalled < self.warning_s:
                continue  # the run's own trials are running: the queue moves
            waiting.warnings += 1
            waited = now - waiting.since
            events.append(
                Event(
                    EventKind.TRIAL_PENDING,
                    {
                        "trial_id": trial.trial_id,
                        "pending_s": round(waited, 1),
                        "reason": reason,
                        "message": message,
                        "resources": wanted,
                    },
                )
            )
        return events


def request_of(trial: Any) -> dict[str, float]:
    """One trial's resource request, in Ray's names (zero amounts left out)."""
    try:
        wanted = dict(trial.placement_group_factory.required_resources)
    except Exception:  # noqa: BLE001 - a trial without a factory asks for nothing we can tell
        return {}
    return {name: float(amount) for name, amount in wanted.items() if amount}


def explain(wanted: Mapping[str, float], view: ClusterView, running: Iterable[Mapping[str, float]] = ()) -> tuple[str, str]:
    """Why a request of ``wanted`` is not placed: ``(reason, one sentence)``.

    ``running`` are the requests of the run's running trials, to tell their share of a
    busy resource from what other trials, jobs or actors hold.
    """
    alive = [node.get("Resources", {}) for node in view.nodes if node.get("Alive", True)]
    dead = [node for node in view.nodes if not node.get("Alive", True)]
    shown = show_resources(wanted)
    if not fits_a_node(wanted, alive):
        starts = next((kind for kind in view.node_types or () if kind.holds(wanted)), None)
        if starts is not None:
            return WAITING, (
                f"no live node can hold its request ({shown}) yet: the autoscaler can start a {starts.name!r} node "
                f"({show_resources(starts.resources)}) for it; `ray status` on the head shows whether it is starting one"
            )
        short = [name for name, amount in wanted.items() if max((r.get(name, 0) for r in alive), default=0) < amount]
        detail = ", ".join(f"at most {max((r.get(n, 0) for r in alive), default=0):g} {n}" for n in short)
        message = f"no live node can ever hold its request ({shown})"
        message += f": a live node has {detail}" if detail else ": no single live node has all of it"
        if view.node_types:
            message += f", nor does any node type its autoscaler can start ({', '.join(k.name for k in view.node_types)})"
        could = [node for node in dead if fits_a_node(wanted, [node.get("Resources", {})])]
        if could:
            where = ", ".join(str(node.get("NodeManagerAddress") or node.get("NodeID", "?")) for node in could)
            message += f"; the node that could ({where}) is dead"
        return UNPLACEABLE, message
    busy = []
    for name, amount in wanted.items():
        free = float(view.available.get(name, 0.0))
        if free >= amount:
            continue
        total = sum(float(r.get(name, 0)) for r in alive)
        used = max(total - free, 0.0)
        ours = min(sum(float(r.get(name, 0)) for r in running), used)
        if ours > 0:
            share = f"{ours:g} by this run's trials, {used - ours:g} by other trials, jobs or actors"
        else:
            share = "by other trials, jobs or actors"
        busy.append(f"{used:g} of {total:g} {name} in use ({share}), it needs {amount:g}")
    if busy:
        return BUSY, "waiting for resources: " + "; ".join(busy)
    return WAITING, (
        f"enough is free for its request ({shown}) but it has not started: Ray may be starting its worker, "
        "waiting for the autoscaler, or the free resources are split across nodes"
    )


def awaited_node(wanted: Mapping[str, float], kind: NodeType) -> dict[str, Any]:
    """The node type a run waits for, as the experiment_started event carries it: no live node
    holds one trial yet, and the cluster's autoscaler can start ``kind``, which does."""
    return {
        "name": kind.name,
        "resources": dict(kind.resources),
        "line": (
            f"no live node holds one trial ({show_resources(wanted)}) yet: the autoscaler can start a {kind.name!r} node "
            f"({show_resources(kind.resources)}) for it; `ray status` on the head shows whether it is starting one"
        ),
    }
