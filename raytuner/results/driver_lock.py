"""One driver per experiment folder: ``run``, ``resume`` and ``extend`` hold its lock while they run.

Two drivers on one folder write the same tables and Ray state (a resume of a run still going
broke both: lost trials, a wrong best, an experiment that never completes again). The lock is
``flock`` on :data:`LOCK` in the folder, taken by the driver process and held for the run's
life: the kernel releases it when the process ends, however it ends (kill -9 included), so a
dead driver never blocks a resume. The file keeps the holder's pid and host for the refusal.

On object storage the lock is taken in the local working copy: it keeps two drivers on one
machine apart, not drivers on two machines (object storage has no lock to take).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import json
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from raytuner.errors import UsageError
from raytuner.results import layout

P = ParamSpec("P")
R = TypeVar("R")
LOCK = ".driver.lock"
# flock not offered by the file system (some FUSE and network mounts): run unguarded, as before
_UNSUPPORTED = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


@contextlib.contextmanager
def driving(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s driver lock while the block runs.

    Raises:
        UsageError: another live driver holds it (one line naming it).
    """
    fd = _take(folder)
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock; the file stays, naming the last driver


def driven(function: Callable[Concatenate[Path, P], R]) -> Callable[Concatenate[Path, P], R]:
    """``function(folder, ...)``, run holding ``folder``'s driver lock (:func:`driving`)."""

    @functools.wraps(function)
    def wrapper(folder: Path, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with driving(folder):
            return function(folder, *args, **kwargs)

    return wrapper


def check_free(folder: Path) -> None:
    """Refuse, as :func:`driving` would, when a live driver holds ``folder``; hold nothing.

    Raises:
        UsageError: another live driver holds it.
    """
    fd = _take(folder, record=False)
    if fd is not None:
        os.close(fd)


def is_driven(folder: Path) -> bool:
    """Whether a live driver holds ``folder`` now."""
    try:
        check_free(folder)
    except UsageError:
        return True
    return False


def _take(folder: Path, *, record: bool = True) -> int | None:
    """The lock's open file, locked; None where the folder or its file system cannot hold one."""
    path = folder / LOCK
    if not folder.is_dir():
        return None
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by the subprocesses Ray starts
    except OSError:  # a read-only folder: nothing to guard, the run itself says what is wrong
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in _UNSUPPORTED:
            return None
        raise UsageError(_busy(folder)) from exc
    if record:  # who holds it, for another driver's refusal; a full disk leaves it unnamed, still held
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"pid": os.getpid(), "hostname": socket.gethostname()}).encode())
    return fd


def _busy(folder: Path) -> str:
    driver = _holder(folder)
    who = f"pid {driver.get('pid', '?')} on {driver.get('hostname', '?')}" if driver else "another process"
    where = _bucket_of(folder) or str(folder)
    return (
        f"experiment '{_name(folder)}' ({where}) is still running: its driver ({who}) holds it; wait for that run to end "
        "or stop it first (Ctrl-C), then try again"
    )


def _bucket_of(folder: Path) -> str | None:
    """The URI a working copy mirrors (its marker file, written without credentials), if it is one."""
    with contextlib.suppress(OSError):
        return (folder / layout.REMOTE_MARKER).read_text().strip() or None
    return None


def _holder(folder: Path) -> dict[str, Any]:
    """The live driver as it wrote itself into the lock file, else as ``status.json`` records it."""
    for path, key in ((folder / LOCK, None), (folder / layout.STATUS, "driver")):
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(path.read_text())
            found = data.get(key) if key else data
            if isinstance(found, dict) and found:
                return found
    return {}


def _name(folder: Path) -> str:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        name = json.loads((folder / layout.STATUS).read_text()).get("name")
        if isinstance(name, str) and name:
            return name
    return folder.name
