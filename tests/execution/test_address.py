"""``raytuner run --address`` joins an existing Ray cluster and leaves it running."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pids_using(marker: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split() if int(pid) != os.getpid()]


def _without_auth_mode() -> dict[str, str]:
    # raytuner must find the token by itself, as a user's shell would not set RAY_AUTH_MODE
    return {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Ray head started with `ray start` on loopback, in its own temp dir.

    Stopped afterwards by the process ids whose command line names that temp dir, so no
    other Ray on the machine is touched.
    """
    temp = tmp_path_factory.mktemp("raycluster")
    port = _free_port()
    ray = Path(sys.executable).parent / "ray"
    subprocess.run(
        [str(ray), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
         "--include-dashboard=false", f"--temp-dir={temp}", "--disable-usage-stats"],
        check=True, capture_output=True, timeout=120,
    )
    try:
        yield f"127.0.0.1:{port}"
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in _pids_using(str(temp)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            time.sleep(2)


def test_run_joins_the_cluster_and_leaves_it_running(cluster: str, tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "raytuner"
    done = subprocess.run(
        [str(exe), "run", str(ROOT / "experiments" / "quickstart.yaml"), "--address", cluster, "--json",
         "--storage", str(tmp_path), "--set", "search.num_samples=4"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=_without_auth_mode(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[0]["ray"] == cluster
    assert events[-1]["state"] == "completed"
    # the cluster is still there for the next run, this time through RAY_ADDRESS
    env = {**_without_auth_mode(), "RAY_ADDRESS": cluster}
    again = subprocess.run(
        [str(exe), "run", str(ROOT / "experiments" / "quickstart.yaml"), "--json", "--storage", str(tmp_path),
         "--set", "search.num_samples=2"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout.splitlines()[0])["ray"] == cluster
    assert sorted(p.name for p in tmp_path.iterdir() if (p / "status.json").exists()) == ["quickstart", "quickstart-2"]
