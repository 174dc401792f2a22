"""A private Ray listens on loopback only: nothing of a laptop run is reachable from the network;
and it is gone when the run ends, its autoscaler monitor included (which raytuner stops itself).
A run without --address starts its own whatever other Ray runs (or ran) on the machine; joining
a cluster that does not answer fails in one line."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from loopback_ports import free_port

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


@pytest.mark.parametrize("ray_address", [None, "local"])  # Ray's "local": a Ray of the run's own, so the private one
def test_a_private_ray_binds_only_to_loopback_and_leaves_no_process(ray_address: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    if ray_address is not None:
        env["RAY_ADDRESS"] = ray_address
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["node_ip"] == "127.0.0.1"
    assert seen["listening"], "no listening socket found: the probe saw none of Ray's processes"
    assert all(ip in ("127.0.0.1", "::ffff:127.0.0.1") for ip in seen["listening"]), seen
    assert len(seen["monitors"]) == 1 and seen["left"] == [], seen


RAYTUNER = str(Path(sys.executable).parent / "raytuner")
TINY = """
name: tiny
trainable: {builtin: analytic, iterations: 2}
metric: loss
mode: min
space: {x: {uniform: [-1, 1]}}
search: {algorithm: random, num_samples: 2, seed: 1}
"""


@pytest.fixture
def ray_tmpdir() -> Iterator[Path]:
    """A RAY_TMPDIR of the test's own (short: Ray's socket paths are limited), where Ray looks for
    ``ray/ray_current_cluster``; every process whose command line names it is killed after."""
    temp = Path(tempfile.mkdtemp(prefix="rt-private-"))
    try:
        yield temp
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for process in psutil.process_iter(["pid", "cmdline"]):
                if process.pid != os.getpid() and any(str(temp) in arg for arg in process.info["cmdline"] or ()):
                    with contextlib.suppress(psutil.Error):
                        process.send_signal(sig)
            time.sleep(1)
        shutil.rmtree(temp, ignore_errors=True)


def _env(ray_tmpdir: Path, home: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    return {**env, "RAY_TMPDIR": str(ray_tmpdir), "HOME": home}


def _run_tiny(ray_tmpdir: Path, cwd: Path) -> dict[str, object]:
    """``raytuner run`` of :data:`TINY` without --address; its experiment_finished event."""
    (cwd / "tiny.yaml").write_text(TINY)
    home = cwd / "home"  # no token of the head's: joining it would fail, as for a user of another cluster
    home.mkdir(exist_ok=True)
    done = subprocess.run(
        ["timeout", "240", RAYTUNER, "run", "tiny.yaml", "--json", "--storage", str(cwd / "runs")],
        capture_output=True, text=True, env=_env(ray_tmpdir, str(home)), cwd=cwd,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[0]["ray"] == "local"
    return events[-1]


@pytest.mark.slow
@pytest.mark.ray
def test_a_run_without_address_starts_its_own_ray_beside_a_ray_start_head(ray_tmpdir: Path, tmp_path: Path) -> None:
    port = free_port()
    head_home = tmp_path / "head-home"  # ray start may write a token into ~/.ray: not the user's
    head_home.mkdir()
    subprocess.run(
        ["timeout", "180", str(Path(sys.executable).parent / "ray"), "start", "--head", "--node-ip-address=127.0.0.1",
         f"--port={port}", "--num-cpus=1", "--include-dashboard=false", f"--temp-dir={ray_tmpdir / 'ray'}",
         "--disable-usage-stats"],
        check=True, capture_output=True, env=_env(ray_tmpdir, str(head_home)),
    )  # fmt: skip
    # Ray records the machine's address there, not 127.0.0.1 (it expects other nodes to join)
    assert (ray_tmpdir / "ray" / "ray_current_cluster").read_text().strip().endswith(f":{port}")
    finished = _run_tiny(ray_tmpdir, tmp_path)
    assert finished["state"] == "completed" and finished["trials"]["completed"] == 2  # type: ignore[index]
    socket.create_connection(("127.0.0.1", port), timeout=5).close()  # the head is still there, untouched


@pytest.mark.slow
@pytest.mark.ray
def test_a_stale_ray_current_cluster_file_does_not_hang_a_run(ray_tmpdir: Path, tmp_path: Path) -> None:
    # what a head killed rather than stopped by Ray's own stop command leaves: its address, nobody listening there
    (ray_tmpdir / "ray").mkdir()
    (ray_tmpdir / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{free_port()}")
    finished = _run_tiny(ray_tmpdir, tmp_path)
    assert finished["state"] == "completed" and finished["trials"]["completed"] == 2  # type: ignore[index]


@pytest.mark.parametrize("how", ["--address", "RAY_ADDRESS"])
def test_joining_a_cluster_that_does_not_answer_is_one_line_at_once(how: str, tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    (tmp_path / "tiny.yaml").write_text(TINY)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    args, env = (["--address", address], env) if how == "--address" else ([], {**env, "RAY_ADDRESS": address})
    done = subprocess.run(
        ["timeout", "120", RAYTUNER, "run", "tiny.yaml", "--storage", str(tmp_path / "runs"), *args],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stderr.splitlines() == [
        f"error: cannot reach the Ray cluster at {address} (connection refused): check that Ray runs there "
        f"(`ray status` on the head) and that port {address.rpartition(':')[2]} (the head's `ray start --port`, "
        "6379 by default) is open from this machine"
    ]
    assert not (tmp_path / "runs").exists()


def test_joining_a_port_that_accepts_but_never_answers_is_one_line(tmp_path: Path) -> None:
    """Something listens there, but not Ray: Ray's GCS client waited 40 s before it gave up."""
    (tmp_path / "tiny.yaml").write_text(TINY)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts (the kernel's backlog), never speaks
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        done = subprocess.run(
            ["timeout", "120", RAYTUNER, "run", "tiny.yaml", "--storage", str(tmp_path / "runs"), "--address", address],
            capture_output=True, text=True, env=env, cwd=tmp_path,
        )  # fmt: skip
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stderr.splitlines() == [
        f"error: cannot join the Ray cluster at {address}: something accepts connections on port "
        f"{address.rpartition(':')[2]} but does not answer (nothing in 5 s; a Ray head's GCS answers at once); check "
        "the address (the head's `ray start --port`, 6379 by default)"
    ]
    assert not (tmp_path / "runs").exists()
