"""What every benchmark shares: launching a measured process, cleaning up after it, the machine.

Each measured command runs in its own session (process group) with a marker variable in its
environment and its own Ray temporary folder (``RAY_TMPDIR``), so its Ray never meets another
one on the machine; afterwards the group is killed, then anything else carrying the marker
(Ray's raylet and workers start their own sessions), and the temporary folder is removed, after
noting whether a Ray session appeared in it (the inline backend's runs must start none).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MARK = "RAYTUNER_BENCH_MARK"  # environment variable that tags every process a measured command starts


@dataclass
class Launched:
    """One finished command: when it started, how long it took, what it printed."""

    launched: float  # epoch seconds just before the process was created
    wall_s: float
    lines: list[tuple[float, str]]  # (epoch seconds when read, stdout line)
    rc: int
    leftovers: int  # processes still alive after the command's group was killed
    stderr_tail: str = ""
    # A Ray session folder appeared in the command's RAY_TMPDIR: it started Ray (an inline run must not)
    ray_started: bool = False

    def events(self) -> list[dict[str, Any]]:
        """The JSON event lines (``raytuner run --json``), in order."""
        found = []
        for _, line in self.lines:
            if not line.startswith("{"):
                continue
            with contextlib.suppress(ValueError):
                payload = json.loads(line)
                if isinstance(payload, dict) and "event" in payload:
                    found.append(payload)
        return found

    def first_event(self, kind: str) -> dict[str, Any] | None:
        return next((event for event in self.events() if event["event"] == kind), None)


@dataclass
class Command:
    """What to launch, and how long it may take."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)  # added to this process's environment
    timeout_s: float = 1200.0
    on_start: Callable[[int], None] | None = None  # called with the child's pid (e.g. to sample it)


def raytuner_argv() -> list[str]:
    """The installed ``raytuner`` command of this interpreter's environment."""
    exe = Path(sys.executable).with_name("raytuner")
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "from raytuner.cli import entry; entry()"]


def ours(mark: str) -> list[int]:
    """Processes whose environment carries ``mark`` (everything one command started)."""
    needle = f"{MARK}={mark}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def reap(pid: int, mark: str) -> int:
    """Kill what a command left behind: its process group, then anything else it tagged."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    leftovers = ours(mark)
    for other in leftovers:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(other, signal.SIGKILL)
    return len(leftovers)


def launch(command: Command, log: Path) -> Launched:
    """Run ``command`` in its own session and Ray temporary folder; stdout is read line by line."""
    mark = uuid.uuid4().hex
    ray_tmp = tempfile.mkdtemp(prefix="rtb-", dir="/tmp")  # short: Ray's socket paths live under it
    env = {**os.environ, **command.env, MARK: mark, "RAY_TMPDIR": ray_tmp}
    env.pop("RAY_ADDRESS", None)
    lines: list[tuple[float, str]] = []
    try:
        with log.open("wb") as err:
            launched = time.time()
            start = time.perf_counter()
            proc = subprocess.Popen(
                command.argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err, start_new_session=True
            )
            if command.on_start is not None:
                command.on_start(proc.pid)
            assert proc.stdout is not None
            deadline = start + command.timeout_s
            try:
                for raw in proc.stdout:
                    lines.append((time.time(), raw.decode(errors="replace").rstrip("\n")))
                    if time.perf_counter() > deadline:
                        raise subprocess.TimeoutExpired(command.argv, command.timeout_s)
                rc = proc.wait(timeout=max(1.0, deadline - time.perf_counter()))
            except subprocess.TimeoutExpired:
                reap(proc.pid, mark)
                proc.wait()
                rc = -9
            wall = time.perf_counter() - start
        leftovers = reap(proc.pid, mark)
    finally:
        ray_started = any(Path(ray_tmp, "ray").glob("session_2*"))  # session_<date>_...: ray.init ran
        shutil.rmtree(ray_tmp, ignore_errors=True)
    return Launched(launched, wall, lines, rc, leftovers, tail(log) if rc != 0 else "", ray_started)


def tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def warm_up() -> None:
    """Import the heavy modules once so the first timed command does not pay a cold disk cache."""
    subprocess.run([sys.executable, "-c", "import ray.tune, raytuner.cli"], cwd=ROOT, check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


# ---------------------------------------------------------------------------- the machine


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return None


def _memory_gib() -> float | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    return None


def _git_revision() -> str | None:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=ROOT, capture_output=True, check=False)
    except (OSError, subprocess.CalledProcessError):
        return None
    return rev.stdout.strip() + (" (+ uncommitted changes)" if dirty.returncode else "")


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (how busy the machine was around a measurement)."""
    return [round(value, 2) for value in os.getloadavg()]


def machine() -> dict[str, Any]:
    """The facts a measurement needs next to it: CPUs, memory, versions, revision."""
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "ray": _version("ray"),
        "raytuner": _version("raytuner"),
        "optuna": _version("optuna"),
        "torch": _version("torch"),
        "git_revision": _git_revision(),
    }


def fmt(value: Any, spec: str = ".2f") -> str:
    """A table cell: '-' for a missing value."""
    return "-" if value is None else format(value, spec)
