"""Ports for the Ray clusters and servers tests start on 127.0.0.1.

Asking the kernel for a free port (bind to 0) one at a time can hand back the same port twice, and
its ports come from the ephemeral range every outgoing connection draws from too: a CI run once
started a Ray head with its dashboard and dashboard agent on one port, which failed. These come
from below the ephemeral range and above Ray's worker ports (10002-19999), are distinct within a
call, and were free when chosen.
"""

from __future__ import annotations

import contextlib
import random
import socket
from pathlib import Path

_RAY_WORKER_PORTS_END = 19999


def _ephemeral_start() -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    return 32768


def free_ports(count: int) -> list[int]:
    """`count` distinct ports on 127.0.0.1, each bound for a moment so none is in use now."""
    low, high = _RAY_WORKER_PORTS_END + 1, _ephemeral_start() - 1
    held: list[socket.socket] = []
    try:
        for candidate in random.sample(range(low, high + 1), k=min(high - low + 1, 200 * count)):
            probe = socket.socket()
            try:
                probe.bind(("127.0.0.1", candidate))
            except OSError:
                probe.close()
                continue
            held.append(probe)
            if len(held) == count:
                return [s.getsockname()[1] for s in held]
        raise RuntimeError(f"found {len(held)} free ports of {count} between {low} and {high}")
    finally:
        for probe in held:
            probe.close()


def free_port() -> int:
    return free_ports(1)[0]
