"""Events a run emits for whoever shows progress (the live view, ``--json`` lines, tests)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from raytuner.results.records import ExperimentBook


class EventKind(str, Enum):
    EXPERIMENT_STARTED = "experiment_started"
    TRIAL_STARTED = "trial_started"
    TRIAL_COMPLETED = "trial_completed"
    TRIAL_STOPPED = "trial_stopped"
    TRIAL_ERROR = "trial_error"
    TRIAL_RETRY = "trial_retry"
    TRIAL_PENDING = "trial_pending"
    NEW_BEST = "new_best"
    PBT_EXPLOIT = "pbt_exploit"
    SEARCH_DECISION = "search_decision"  # search.algorithm auto started with, or switched to, a searcher
    PROGRESS = "progress"
    EXPERIMENT_FINISHED = "experiment_finished"


@dataclass(frozen=True)
class Event:
    kind: EventKind
    data: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {"event": self.kind.value, "time": round(self.time, 3), **self.data}


class Listener(Protocol):
    def handle(self, event: Event, book: ExperimentBook) -> None: ...


class NullListener:
    def handle(self, event: Event, book: ExperimentBook) -> None:
        pass


class Recorder:
    """Keeps every event (tests, and the summary's counts)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def handle(self, event: Event, book: ExperimentBook) -> None:
        self.events.append(event)

    def kinds(self) -> list[EventKind]:
        return [event.kind for event in self.events]
