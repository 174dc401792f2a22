"""The inline backend's resumable state, ``inline-state.pkl``: the searcher's memory, the
scheduler, the unfinished trials and the records of trials ended since the tables were written."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from raytuner.errors import ExperimentError

STATE_FILE = "inline-state.pkl"
STATE_VERSION = 1


def read_state(folder: Path) -> dict[str, Any]:
    """The state saved in ``folder``.

    Raises:
        ExperimentError: none was saved, or another raytuner version saved it.
    """
    path = folder / STATE_FILE
    if not path.is_file():
        raise ExperimentError(
            f"{folder.name}: no saved state to resume from (the run stopped before its first save); "
            "start it again with raytuner run"
        )
    with path.open("rb") as fh:
        state: dict[str, Any] = pickle.load(fh)
    if state.get("version") != STATE_VERSION:
        raise ExperimentError(f"{path}: saved by another raytuner version (state {state.get('version')})")
    return state


def write_state(folder: Path, state: dict[str, Any]) -> None:
    """Save ``state`` (its version added) in ``folder``, replacing the last save whole."""
    from ray import cloudpickle  # Ray's schedulers hold lambdas (the median rule's defaultdicts)

    from raytuner.results.store import write_bytes_atomic

    write_bytes_atomic(folder / STATE_FILE, cloudpickle.dumps({"version": STATE_VERSION, **state}))  # no .tmp left on a full disk


def trial_number(trial_id: str) -> int:
    """A trial's place in the run (``<run id>_<number>``)."""
    tail = trial_id.rpartition("_")[2]
    return int(tail) if tail.isdigit() else -1


def searcher_state(searcher: Any) -> dict[str, Any]:
    """The searcher's memory, in memory (raytuner's searchers and Ray's concurrency limit
    around them all have ``get_state``): no file written per save."""
    from ray.tune.search import ConcurrencyLimiter

    if isinstance(searcher, ConcurrencyLimiter):
        return {"limiter": searcher.get_state(), "inner": searcher_state(searcher.searcher)}
    return {"state": searcher.get_state()}


def restore_searcher(searcher: Any, state: dict[str, Any]) -> None:
    from ray.tune.search import ConcurrencyLimiter

    if isinstance(searcher, ConcurrencyLimiter):
        searcher.set_state(state["limiter"])
        restore_searcher(searcher.searcher, state["inner"])
    else:
        searcher.set_state(state["state"])
