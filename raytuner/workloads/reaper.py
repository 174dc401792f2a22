"""Ends a command trainable's process group once the trial's actor is gone, however it went.

The program runs in a process group of its own, so that stopping a trial reaches its
children too. When the actor is killed (``ray.kill`` by the hung-trial watchdog, SIGKILL,
the OOM killer, its node's raylet dying) no Python code runs in it and nobody would signal
that group: the program and everything it started would live on, holding CPUs, GPU memory
and files. So for each program the actor starts a watcher:

- it holds the read end of a pipe whose only write end is in the actor; the kernel closes
  that end when the actor dies, for any reason, and the watcher reads end-of-file;
- then it sends SIGTERM to the group, and SIGKILL to what is left after the grace period;
- it is not the actor's child (it forks once more and its parent exits), so Ray, which
  kills a dying worker's direct children, does not take it along before it has done its work;
- it exits by itself as soon as the group is gone (the program ended, or was stopped).

Processes that leave the group on purpose (``setsid``, daemons) are not followed.

The watcher runs this file as a script with the standard library only (``python -I``):
``reaper.py FD PGID GRACE_S``. :func:`guard` starts it.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time

POLL_S = 1.0  # how often a waiting watcher checks that the group still exists
END_POLL_S = 0.05


class Guard:
    """The actor's side of one watcher: the pipe's write end, kept open while the group lives."""

    def __init__(self, fd: int, starter: subprocess.Popen[bytes]) -> None:
        self._fd: int | None = fd
        self._starter = starter

    def release(self) -> None:
        """Close the pipe: the watcher ends what is left of the group, then exits."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._starter.wait(timeout=5)  # long gone by now: it only forks the watcher


def guard(pgid: int, grace_s: float) -> Guard | None:
    """Start a watcher for process group ``pgid``; :meth:`Guard.release` lets the group go.

    Returns None where no watcher could be started; the program then runs unguarded, as it
    would without this module. Nothing here waits for the watcher's Python to start: it holds
    the pipe from its first instruction, so an actor that dies even now is still noticed.
    """
    if not hasattr(os, "fork"):
        return None
    read_end, write_end = os.pipe()  # both non-inheritable: no other child gets them
    try:
        starter = subprocess.Popen(
            [sys.executable, "-I", os.path.abspath(__file__), str(read_end), str(pgid), repr(float(grace_s))],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(read_end,),
            start_new_session=True,  # signals to the actor's group or the program's do not reach it
        )
    except OSError:
        os.close(write_end)
        return None
    finally:
        os.close(read_end)
    return Guard(write_end, starter)


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # the id now belongs to someone else's processes: not ours to end
        return False
    return True


def _group_lives(pgid: int) -> bool:
    """Some member of the group is still running (zombies, dead but unreaped, do not count)."""
    if not _group_exists(pgid):
        return False
    if not os.path.isdir("/proc"):
        return True
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # after the command's closing parenthesis: state, ppid, pgrp, ...
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def end_group(pgid: int, grace_s: float) -> None:
    """SIGTERM to the group, SIGKILL after ``grace_s`` to whatever still runs in it."""
    if not _group_lives(pgid):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not _group_lives(pgid):
            return
        time.sleep(END_POLL_S)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def watch(fd: int, pgid: int, grace_s: float) -> None:
    """Wait for end-of-file on ``fd`` (the actor closed it or died), then end the group;
    return early once the group is gone by itself."""
    while _group_exists(pgid):
        ready, _, _ = select.select([fd], [], [], POLL_S)
        if ready:
            try:
                data = os.read(fd, 64)
            except OSError:
                data = b""
            if not data:
                end_group(pgid, grace_s)
                return


def main(argv: list[str]) -> int:
    fd, pgid, grace_s = int(argv[0]), int(argv[1]), float(argv[2])
    if os.fork() > 0:
        os._exit(0)  # the starter: the watcher is no child of the actor's
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # Ctrl-C in the driver's terminal is not for it
    watch(fd, pgid, grace_s)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
