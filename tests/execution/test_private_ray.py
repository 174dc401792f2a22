"""A private Ray listens on loopback only: nothing of a laptop run is reachable from the network;
and it is gone when the run ends, its autoscaler monitor included (which raytuner stops itself)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.subprocess]

PROBE = """
import ipaddress, json, psutil
from raytuner.execution.session import ray_session

with ray_session(None, verbose=False, num_cpus=1):
    import ray
    node_ip = ray.util.get_node_ip_address()
    listening = set()
    ray_processes = psutil.Process().children(recursive=True)
    monitors = [p.pid for p in ray_processes if any("autoscaler/_private/monitor.py" in a for a in p.cmdline())]
    for process in ray_processes:
        try:
            connections = process.net_connections(kind="inet")
        except psutil.Error:
            continue
        listening |= {c.laddr.ip for c in connections if c.status == psutil.CONN_LISTEN}
_, alive = psutil.wait_procs(ray_processes, timeout=10)  # the raylet's workers follow it a moment later
left = [p.pid for p in alive]
print(json.dumps({"node_ip": node_ip, "listening": sorted(listening), "monitors": monitors, "left": left}))
"""


def test_a_private_ray_binds_only_to_loopback_and_leaves_no_process() -> None:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["node_ip"] == "127.0.0.1"
    assert seen["listening"], "no listening socket found: the probe saw none of Ray's processes"
    assert all(ip in ("127.0.0.1", "::ffff:127.0.0.1") for ip in seen["listening"]), seen
    assert len(seen["monitors"]) == 1 and seen["left"] == [], seen
