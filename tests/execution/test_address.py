"""``raytuner run --address`` joins an existing Ray cluster and leaves it running.

Each cluster here has a token of its own, and the clients a HOME of their own holding it in
``~/.ray/auth_token``: nothing depends on the real user's token.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from loopback_ports import free_port

ROOT = Path(__file__).resolve().parents[2]
EXE = Path(sys.executable).parent / "raytuner"
pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def _pids_using(marker: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split() if int(pid) != os.getpid()]


@dataclass(frozen=True)
class Head:
    address: str  # 127.0.0.1:PORT
    home: Path  # the client's HOME: ~/.ray/auth_token holds the cluster's token

    @property
    def env(self) -> dict[str, str]:
        # raytuner must find the token by itself, as a user's shell would not set RAY_AUTH_MODE
        base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        return {**base, "HOME": str(self.home), "RAYTUNER_CACHE": str(self.home / "cache")}


@contextlib.contextmanager
def _head(tmp_path_factory: pytest.TempPathFactory, num_cpus: int, home: Path | None = None) -> Iterator[Head]:
    """A Ray head started with `ray start` on loopback, in its own temp dir, with its own token.

    Stopped afterwards by the process ids whose command line names that temp dir, so no
    other Ray on the machine is touched.
    """
    temp = tmp_path_factory.mktemp("raycluster")
    home = home or tmp_path_factory.mktemp("home")
    token = secrets.token_hex(32)
    (home / ".ray").mkdir(exist_ok=True)
    (home / ".ray" / "auth_token").write_text(token)
    env = {**Head("", home).env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    port = free_port()
    ray = Path(sys.executable).parent / "ray"
    try:
        subprocess.run(
            [str(ray), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", f"--num-cpus={num_cpus}",
             "--include-dashboard=false", f"--temp-dir={temp}", "--disable-usage-stats"],
            check=True, capture_output=True, timeout=120, env=env,
        )  # fmt: skip
        yield Head(f"127.0.0.1:{port}", home)
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in _pids_using(str(temp)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            time.sleep(2)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Head]:
    with _head(tmp_path_factory, num_cpus=2) as head:
        yield head


def _run(head: Head, *args: str, env: dict[str, str] | None = None, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EXE), "run", str(ROOT / "experiments" / "quickstart.yaml"), *args],
        capture_output=True, text=True, timeout=300, cwd=cwd, env=env or head.env,
    )  # fmt: skip


def test_run_joins_the_cluster_and_leaves_it_running(cluster: Head, tmp_path: Path) -> None:
    done = _run(cluster, "--address", cluster.address, "--json", "--storage", str(tmp_path),
                "--set", "search.num_samples=4", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[0]["ray"] == cluster.address
    assert events[-1]["state"] == "completed"
    # the cluster is still there for the next run, this time through RAY_ADDRESS
    env = {**cluster.env, "RAY_ADDRESS": cluster.address}
    again = _run(cluster, "--json", "--storage", str(tmp_path), "--set", "search.num_samples=2", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout.splitlines()[0])["ray"] == cluster.address
    assert sorted(p.name for p in tmp_path.iterdir() if (p / "status.json").exists()) == ["quickstart", "quickstart-2"]


FIX = "set RAY_AUTH_TOKEN, or write the cluster's token to ~/.ray/auth_token (`ray get-auth-token` on the head prints it)"


def test_a_wrong_or_missing_token_is_one_line_at_once_and_leaves_no_folder(cluster: Head, tmp_path: Path) -> None:
    wrong = {**cluster.env, "RAY_AUTH_TOKEN": "0" * 64}
    empty = tmp_path / "empty-home"
    empty.mkdir()
    expected = [
        (wrong, f"error: the Ray cluster at {cluster.address} refused the token from RAY_AUTH_TOKEN: {FIX}"),
        ({**cluster.env, "HOME": str(empty)},
         f"error: the Ray cluster at {cluster.address} requires a token and none was found: {FIX}"),
    ]  # fmt: skip
    for env, line in expected:
        started = time.monotonic()
        done = _run(cluster, "--address", cluster.address, "--storage", str(tmp_path / "runs"), env=env, cwd=tmp_path)
        assert time.monotonic() - started < 30  # Ray alone gives up on a wrong token after 20 s, with a bare error
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stderr.strip().splitlines() == [line]
    assert not (tmp_path / "runs").exists()


def test_an_address_nobody_listens_on_is_one_line_at_once(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RAY_")}, "HOME": str(tmp_path)}
    started = time.monotonic()
    done = subprocess.run(
        [str(EXE), "run", str(ROOT / "experiments" / "quickstart.yaml"), "--address", "127.0.0.1:9",
         "--storage", str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert time.monotonic() - started < 30  # Ray alone retried for minutes, printing its C++ warnings
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: cannot reach the Ray cluster at 127.0.0.1:9 (connection refused): check that Ray runs there "
        "(`ray status` on the head) and that port 9 (the head's `ray start --port`, 6379 by default) is open "
        "from this machine"
    ]
    assert not (tmp_path / "runs").exists()  # no experiment folder left behind


# What an autoscaler (v2, KubeRay's included) reports to the GCS: Ray's record of the node types it can start.
REPORT_NODE_TYPES = """
import sys, ray
from ray.core.generated import autoscaler_pb2
from ray.experimental.internal_kv import _internal_kv_put
ray.init(address=sys.argv[1], log_to_driver=False)
config = autoscaler_pb2.ClusterConfig()
group = config.node_group_configs.add(name="a100-group", max_count=2)
group.resources.update({"CPU": 12, "GPU": 2})
_internal_kv_put(ray._raylet.GCS_AUTOSCALER_CLUSTER_CONFIG_KEY, config.SerializeToString(),
                 namespace=ray._raylet.GCS_AUTOSCALER_STATE_NAMESPACE)
"""


def _started_then_interrupted(head: Head, tmp_path: Path, *extra: str) -> tuple[dict[str, object], dict[str, object]]:
    """Run the quick-start on ``head`` until its first trial_pending event; Ctrl-C then.
    Returns the experiment_started and trial_pending events."""
    tmp_path.mkdir()
    run = subprocess.Popen(
        [str(EXE), "run", str(ROOT / "experiments" / "quickstart.yaml"), "--address", head.address, "--json",
         "--storage", str(tmp_path), "--set", "search.num_samples=1", "--set", "execution.pending_warning_s=1", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=head.env,
    )  # fmt: skip
    events: dict[str, dict[str, object]] = {}
    try:
        assert run.stdout is not None
        for line in run.stdout:
            event = json.loads(line)
            events[str(event.get("event"))] = event
            if event.get("event") == "trial_pending":
                break
        assert "trial_pending" in events, run.stderr.read() if run.stderr else ""
    finally:
        run.send_signal(signal.SIGINT)
        run.communicate(timeout=120)
    return events["experiment_started"], events["trial_pending"]


def test_a_fresh_launched_cluster_waits_for_the_node_type_its_autoscaler_starts(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """A head with no CPU, as cluster/aws.yaml gives it, and the launcher's config where `ray up`
    leaves it on the head (~/ray_bootstrap_config.yaml). No autoscaler runs here, so no node
    comes: the run must accept the spec and say which node type it waits for. Once the GCS holds
    an autoscaler's record of its node types, that record is what counts."""
    home = tmp_path_factory.mktemp("launched-home")
    shutil.copy(ROOT / "cluster" / "aws.yaml", home / "ray_bootstrap_config.yaml")
    with _head(tmp_path_factory, num_cpus=0, home=home) as head:
        started, pending = _started_then_interrupted(head, tmp_path / "launcher")
        assert pending["reason"] == "waiting"
        assert "the autoscaler can start a 'cpu_worker' node (8 CPU)" in str(pending["message"])
        assert started["awaits_node"] == {
            "name": "cpu_worker",
            "resources": {"CPU": 8.0},
            "line": "no live node holds one trial (1 CPU) yet: the autoscaler can start a 'cpu_worker' node (8 CPU) for "
            "it; `ray status` on the head shows whether it is starting one",
        }
        assert json.loads((tmp_path / "launcher" / "quickstart" / "status.json").read_text())["state"] == "interrupted"

        env = {**head.env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": (home / ".ray" / "auth_token").read_text()}
        subprocess.run([sys.executable, "-c", REPORT_NODE_TYPES, head.address], check=True, env=env, timeout=120)
        started, pending = _started_then_interrupted(head, tmp_path / "gcs", "--set", "resources.gpu=2")
        assert started["awaits_node"]["name"] == "a100-group"  # type: ignore[index]
        assert "the autoscaler can start a 'a100-group' node (12 CPU, 2 GPU)" in str(pending["message"])
