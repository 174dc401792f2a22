"""A storage that fills up mid-run: one line that says so, and a ``status.json`` that does too.

The run stops (``StorageFullError``, exit code 1) and leaves what it wrote resumable: no
half-written file replaces a whole one (``store._replacing``), and ``raytuner resume`` goes on
from the tables once there is room again (docs/results.md, resume).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from raytuner.errors import StorageFullError, is_storage_full
from raytuner.results import layout, remote
from raytuner.results.store import write_json_atomic


def strerror(exc: BaseException) -> str:
    """The reason of the first error in ``exc``'s chain that has one (``No space left on device``)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno:
            return os.strerror(cause.errno)
        cause = cause.__cause__
    return str(exc)


def full_message(folder: Path, exc: BaseException, status: str = f"{layout.STATUS} says failed") -> str:
    """One line for a full storage: which, why, what ``status.json`` now says, and what to do."""
    return (
        f"the storage is full ({strerror(exc)}): {storage_of(folder)}; the run stopped and {status}. "
        f"Free some space, then raytuner resume {folder.name} goes on from what was written"
    )


def nothing_kept_message(folder: Path, exc: BaseException) -> str:
    """One line for a storage too full to record a new run's start: its folder was removed."""
    return (
        f"the storage is full ({strerror(exc)}): {storage_of(folder)}; the run could not start and left nothing. "
        "Free some space, then run it again"
    )


def storage_of(folder: Path) -> str:
    """The storage ``folder`` is in, as the user named it (a bucket's URI for a working copy)."""
    bucket = remote.remote_of(folder)
    return bucket.uri.rsplit("/", 1)[0] if bucket is not None else str(folder.parent)


@contextlib.contextmanager
def storage_checked(folder: Path) -> Iterator[None]:
    """A full storage met outside the run's own handling (setting up, reopening the tables) as
    one :class:`StorageFullError`."""
    try:
        yield
    except OSError as exc:
        if not is_storage_full(exc):
            raise
        raise StorageFullError(full_message(folder, exc, f"{layout.STATUS} was not updated")) from exc


def write_status(path: Path, data: dict[str, Any]) -> None:
    """``write_json_atomic``; on a full disk, the file rewritten in place instead: a new file
    needs a block the disk does not have, the old one's blocks are there to reuse."""
    try:
        write_json_atomic(path, data)
    except OSError as exc:
        if not is_storage_full(exc) or not path.is_file():
            raise
        rewrite_in_place(path, (json.dumps(data, default=str) + "\n").encode())  # compact: no larger than indented


def rewrite_in_place(path: Path, content: bytes) -> None:
    """Overwrite ``path`` with ``content`` in its own blocks (no O_TRUNC: they stay allocated while
    rewritten), where a full disk has none for a new file."""
    with path.open("r+b") as handle:
        handle.write(content)
        handle.truncate()
