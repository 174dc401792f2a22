"""SIGTERM as a first Ctrl-C while a run, resume or extend command runs."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """Within this block SIGTERM does what Ctrl-C does: the first stops the run at the trials'
    next report and leaves it ``interrupted`` and resumable (exit 130); a second stops at once.

    SIGTERM is how ``raytuner jobs stop`` (Ray's job supervisor), a batch scheduler's time limit
    and a plain ``kill`` end the command; Python's default for it ends the process on the spot,
    with the status still ``running`` and the last tables unwritten. The signal is handed to
    whatever handles SIGINT at that moment (Ray Tune's own handler during a fit, the inline
    backend's, or Python's KeyboardInterrupt), so both signals take one path; called directly,
    not re-raised as SIGINT, which a process started in the background inherits ignored. The
    CLI installs it, not the library: a program that calls raytuner keeps its own SIGTERM.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def as_ctrl_c(signum: int, frame: Any) -> None:
        handler = signal.getsignal(signal.SIGINT)
        if not callable(handler):  # ignored, or the default: Python's own is KeyboardInterrupt
            raise KeyboardInterrupt
        handler(signal.SIGINT, frame)

    previous = signal.signal(signal.SIGTERM, as_ctrl_c)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
