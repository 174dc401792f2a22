"""A private Ray listens on loopback only: nothing of a laptop run is reachable from the network."""

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
    for process in psutil.Process().children(recursive=True):
        try:
            connections = process.net_connections(kind="inet")
        except psutil.Error:
            continue
        listening |= {c.laddr.ip for c in connections if c.status == psutil.CONN_LISTEN}
print(json.dumps({"node_ip": node_ip, "listening": sorted(listening)}))
"""


def test_a_private_ray_binds_only_to_loopback() -> None:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["node_ip"] == "127.0.0.1"
    assert seen["listening"], "no listening socket found: the probe saw none of Ray's processes"
    assert all(ip in ("127.0.0.1", "::ffff:127.0.0.1") for ip in seen["listening"]), seen
