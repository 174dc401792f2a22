"""A whole copy of Ray's saved experiment state, for a resume after the storage filled up.

Ray writes its experiment state (``experiment_state-*.json``, the searcher's ``*.pkl``) to a
staging folder on the driver, then copies the files into the experiment folder in place: a
full disk during that copy leaves a file cut short, and ``Tuner.restore`` then fails on it.
raytuner keeps its own copy of each file, taken from the staging folder while Ray saves and
written beside the folder's others atomically (``.ray_state/``), and a resume puts the copies
back over files that are cut short. On object storage an upload is whole or absent, so no copy
is kept there.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from raytuner.errors import ExperimentError
from raytuner.results.store import write_bytes_atomic

COPIES = ".ray_state"
CONTROLLER_LOGGER = "ray.tune.execution.tune_controller"
RESTORE_FAILED = "Failed to restore the run state"  # what Ray logs before it starts the experiment over
PATTERNS = ("experiment_state-*.json", "search_gen_state-*.pkl", "searcher-state-*.pkl", "callback-states-*.pkl")


def keep(staging: Path, folder: Path) -> None:
    """Copy Ray's state files from ``staging`` into ``folder/.ray_state``, each atomically.

    A copy that cannot be written (a full disk) leaves the previous one: a copy is always
    a whole file Ray wrote, though not always the newest.
    """
    copies = folder / COPIES
    try:
        copies.mkdir(exist_ok=True)
        for path in _state_files(staging):
            write_bytes_atomic(copies / path.name, path.read_bytes())
    except OSError:
        pass


def repair(folder: Path) -> list[str]:
    """Put the kept copy back over each of Ray's state files in ``folder`` that is cut short.

    Returns the names of the files put back.

    Raises:
        ExperimentError: a state file is cut short and no whole copy of it was kept.
    """
    put_back = []
    for path in _state_files(folder):
        if _whole(path):
            continue
        copy = folder / COPIES / path.name
        if not copy.is_file() or not _whole(copy):
            raise ExperimentError(
                f"{folder.name}: Ray's saved state {path.name} is cut short (the storage filled up while Ray wrote "
                "it) and no whole copy was kept; the experiment cannot be resumed: start it again with raytuner run"
            )
        write_bytes_atomic(path, copy.read_bytes())
        put_back.append(path.name)
    return put_back


def _state_files(folder: Path) -> list[Path]:
    try:
        names = sorted(p.name for p in folder.iterdir() if p.is_file())
    except OSError:
        return []
    return [folder / name for name in names if any(fnmatch.fnmatch(name, pattern) for pattern in PATTERNS)]


def _whole(path: Path) -> bool:
    """Whether a state file reads to its end: a JSON document or pickle cut short does not."""
    try:
        data = path.read_bytes()
        if path.suffix == ".json":
            json.loads(data)
        else:
            _end_of_pickle(data)
    except (OSError, ValueError, _CutShort):
        return False
    return True


class _CutShort(Exception):
    pass


def _end_of_pickle(data: bytes) -> None:
    """Walk the pickle's opcodes without building its objects; one cut short has no STOP."""
    import pickletools

    try:
        for opcode, _arg, _pos in pickletools.genops(data):
            if opcode.name == "STOP":
                return
    except (ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise _CutShort from exc
    raise _CutShort


class RestoreFailed(Exception):
    """Ray could not restore its saved state (raised at a resume's first step)."""


class RestoreWatch(logging.Filter):
    """Catches Ray failing to restore its saved state.

    Ray's ``TuneController`` catches any error while restoring (a state file it cannot read,
    a searcher pickled by another version), logs "Failed to restore the run state." with its
    traceback and starts the experiment over in the same folder: new trials beside the old
    ones, and its saved state overwritten at the first save. The watch takes that log record
    (raytuner says it in one line instead) and the Bookkeeper asks :attr:`failure` at the first
    step, stopping the run before anything starts (docs/architecture.md, "Ray internals
    raytuner sets").
    """

    def __init__(self) -> None:
        super().__init__()
        self.error: BaseException | None = None
        self.failure: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if self.failure is not None or not record.getMessage().startswith(RESTORE_FAILED):
            return True
        self.error = record.exc_info[1] if record.exc_info else None
        self.failure = f"{type(self.error).__name__}: {self.error}" if self.error is not None else record.getMessage()
        return False


@contextmanager
def watching_restore() -> Iterator[RestoreWatch]:
    """A :class:`RestoreWatch` on Ray's controller logger for the duration."""
    logger = logging.getLogger(CONTROLLER_LOGGER)
    watch = RestoreWatch()
    logger.addFilter(watch)
    try:
        yield watch
    finally:
        logger.removeFilter(watch)
