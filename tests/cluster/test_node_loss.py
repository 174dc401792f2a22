"""Node loss for real: a worker node of a loopback Ray cluster is killed while trials run on it.

Three nodes, each started with ``ray start`` bound to 127.0.0.1, with a temp dir and ports
of its own, and token authentication: a head without CPUs (the driver joins it), and two
worker nodes, ``a`` and ``b``, with two CPUs each. Four one-CPU trials fill both workers. Once
every trial has checkpointed a few steps, node ``a`` dies: SIGKILL to each process whose
command line names its temp dir, and to its raylet's workers. Its two trials must continue on
``b`` from their checkpoints, their programs (and what those started) must not live on, and
the Parquet tables must say exactly what happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from loopback_ports import free_ports

BIN = Path(sys.executable).parent
COMMANDS = Path(__file__).resolve().parents[1] / "fixtures" / "commands"
STEPS = 10
WAIT_S = 240  # bounds on waiting for events, never timing assertions
pytestmark = [
    pytest.mark.cluster,
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads process states in /proc"),
]

SPEC = f"""
name: nodeloss
trainable:
  command: [python, node_steps.py, PROGRESS, --steps, "{STEPS}", --sleep, "1"]
  workdir: {COMMANDS}
  stop_grace_s: 2
metric: loss
mode: min
space: {{x: {{grid: [1, 2, 3, 4]}}}}
search: {{algorithm: grid, max_concurrent: 4}}
resources: {{cpu: 1}}
failure: {{max_retries: 2}}
"""


@dataclass(frozen=True)
class Node:
    tag: str
    temp: Path


@dataclass(frozen=True)
class Cluster:
    gcs: str
    env: dict[str, str]  # a client shell: the token, raytuner on PATH
    nodes: dict[str, Node]


def _pids_naming(temp: Path) -> list[int]:
    out = subprocess.run(["pgrep", "-f", f"{temp}/"], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split() if int(pid) != os.getpid()]


def _children(parents: set[int]) -> list[int]:
    """Direct children of ``parents`` (a raylet's workers: their command line is ``ray::...``)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) in parents:
                found.append(int(stat.parent.name))
    return found


def _raylets(temp: Path) -> set[int]:
    out = subprocess.run(["pgrep", "-f", f"raylet.*{temp}/"], capture_output=True, text=True).stdout
    return {int(pid) for pid in out.split()}


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _kill_node(node: Node) -> list[int]:
    """SIGKILL the node: its Ray processes (they name its temp dir) and its raylet's workers."""
    pids = set(_pids_naming(node.temp)) | set(_children(_raylets(node.temp)))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return sorted(pids)


def _stop(temps: list[Path]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for temp in temps:
            for pid in set(_pids_naming(temp)) | set(_children(_raylets(temp))):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        time.sleep(2)


def _ray_start(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run([str(BIN / "ray"), "start", *args], capture_output=True, text=True, timeout=180, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"ray start {' '.join(args)} exited {done.returncode}:\n{done.stderr}\n{done.stdout}")


def _node_ports(ports: list[int]) -> list[str]:
    """Six ports of their own for one node's services."""
    manager, objects, agent, agent_grpc, metrics, runtime_env = ports
    return [
        f"--node-manager-port={manager}",
        f"--object-manager-port={objects}",
        f"--dashboard-agent-listen-port={agent}",
        f"--dashboard-agent-grpc-port={agent_grpc}",
        f"--metrics-export-port={metrics}",
        f"--runtime-env-agent-port={runtime_env}",
        "--min-worker-port=0",  # random ports: nodes on one address must not share a range
        "--max-worker-port=0",
    ]


def _wait_for_nodes(gcs: str, env: dict[str, str], count: int) -> None:
    probe = (
        "import sys, ray; ray.init(address=sys.argv[1], logging_level='ERROR'); "
        "n = sum(1 for node in ray.nodes() if node['Alive']); ray.shutdown(); sys.exit(0 if n >= int(sys.argv[2]) else 1)"
    )
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        done = subprocess.run([sys.executable, "-c", probe, gcs, str(count)], env=env, capture_output=True, timeout=120)
        if done.returncode == 0:
            return
        time.sleep(2)
    raise TimeoutError(f"{count} nodes did not join the cluster at {gcs}")


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    token = secrets.token_hex(32)
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    base["PATH"] = f"{BIN}{os.pathsep}{base.get('PATH', '')}"
    server = {
        **base,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": token,
        # the GCS declares a silent node dead after 3 missed 1 s health checks (default: 5 x 3 s)
        "RAY_health_check_period_ms": "1000",
        "RAY_health_check_failure_threshold": "3",
    }
    nodes = {tag: Node(tag, tmp_path_factory.mktemp(f"ray{tag}")) for tag in ("head", "a", "b")}
    port, client_server, *node_ports = free_ports(2 + 6 * len(nodes))
    ports = {tag: node_ports[6 * i : 6 * i + 6] for i, tag in enumerate(nodes)}
    common = ["--node-ip-address=127.0.0.1", "--disable-usage-stats", "--object-store-memory=100000000"]
    try:
        _ray_start(
            ["--head", f"--port={port}", "--num-cpus=0", "--include-dashboard=false",
             f"--ray-client-server-port={client_server}", f"--temp-dir={nodes['head'].temp}", *_node_ports(ports["head"]),
             *common],
            {**server, "NODE_TAG": "head"},
        )  # fmt: skip
        for tag in ("a", "b"):
            _ray_start(
                [f"--address=127.0.0.1:{port}", "--num-cpus=2", f"--temp-dir={nodes[tag].temp}", *_node_ports(ports[tag]),
                 *common],
                {**server, "NODE_TAG": tag},  # the node's workers, and so the programs, inherit it
            )  # fmt: skip
        client = {**base, "RAY_AUTH_TOKEN": token}
        _wait_for_nodes(f"127.0.0.1:{port}", {**client, "RAY_AUTH_MODE": "token"}, 3)
        yield Cluster(f"127.0.0.1:{port}", client, nodes)
    finally:
        _stop([node.temp for node in nodes.values()])


def _wait(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {WAIT_S} s for {what}")
        time.sleep(0.5)


def _progress(folder: Path) -> dict[str, dict[str, int]]:
    """Trial id -> node -> the last step it finished there, from the programs' marker files."""
    seen: dict[str, dict[str, int]] = {}
    for path in folder.iterdir():
        parts = path.name.split(".")
        if len(parts) == 3 and parts[2].isdigit():
            trial, node, step = parts[0], parts[1], int(parts[2])
            nodes = seen.setdefault(trial, {})
            nodes[node] = max(nodes.get(node, 0), step)
    return seen


def _families(folder: Path) -> dict[str, list[tuple[int, int, int, str]]]:
    """Trial id -> one (program, shell, sleep, node) per attempt."""
    families = {}
    for path in folder.glob("*.pids"):
        rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
        families[path.stem] = [(int(a), int(b), int(c), node) for a, b, c, node in rows]
    return families


def test_trials_on_a_lost_node_continue_elsewhere_from_their_checkpoints(cluster: Cluster, tmp_path: Path) -> None:
    progress = tmp_path / "progress"
    progress.mkdir()
    project = tmp_path / "project"  # the working directory Ray uploads to the nodes: the spec only
    project.mkdir()
    (project / "spec.yaml").write_text(SPEC.replace("PROGRESS", str(progress)))
    storage = tmp_path / "shared"  # one folder every node writes to, as shared storage would be
    log = (tmp_path / "raytuner.out").open("w")
    driver = subprocess.Popen(
        [str(BIN / "raytuner"), "run", "spec.yaml", "--address", cluster.gcs, "--json", "--storage", str(storage)],
        cwd=project, env=cluster.env, stdout=log, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        # every trial has finished (and checkpointed) three steps: both nodes are busy
        _wait(
            lambda: len(seen := _progress(progress)) == 4 and all(max(n.values()) >= 3 for n in seen.values()),
            f"four trials three steps in ({_progress(progress)})",
        )
        placed = {trial: next(iter(nodes)) for trial, nodes in _progress(progress).items()}
        on_a = {trial for trial, node in placed.items() if node == "a"}
        assert sorted(placed.values()) == ["a", "a", "b", "b"], placed
        killed = _kill_node(cluster.nodes["a"])
        assert killed
        driver.wait(timeout=WAIT_S * 2)
    finally:
        if driver.poll() is None:
            driver.kill()
        log.close()
    output = (tmp_path / "raytuner.out").read_text()
    assert driver.returncode == 0, output
    events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert events[-1]["state"] == "completed", output
    (folder,) = [p for p in storage.iterdir() if p.is_dir()]
    assert json.loads((folder / "status.json").read_text())["state"] == "completed"

    trials = {row["trial_id"]: row for row in pq.read_table(folder / "trials.parquet").to_pylist()}
    assert set(trials) == set(placed)
    for trial_id, row in trials.items():
        lost = trial_id in on_a
        assert (row["status"], row["num_failures"], row["iterations"]) == ("completed", int(lost), STEPS), row
        assert ("actor" in (row["error"] or "").lower()) is lost, row["error"]  # Ray's word on the dead actor

    results = pq.read_table(folder / "results.parquet").to_pylist()
    assert len(results) == 4 * STEPS  # every step once: a report repeated after the restore replaced its first
    for trial_id in trials:
        rows = sorted((r for r in results if r["trial_id"] == trial_id), key=lambda r: r["training_iteration"])
        assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
        assert [r["training_iteration"] for r in rows] == list(range(1, STEPS + 1))
        if trial_id not in on_a:
            assert {(r["node"], r["resumed_from"]) for r in rows} == {("b", 0)}
            continue
        # steps 1..c ran on a; from its step-c checkpoint the trial went on on b
        resumed = [r for r in rows if r["node"] == "b"]
        assert resumed, rows
        c = resumed[0]["resumed_from"]
        assert c >= 1, "the trial started over instead of resuming from its checkpoint"
        assert [(r["step"], r["node"], r["resumed_from"]) for r in rows] == [
            (step, "a", 0) if step <= c else (step, "b", c) for step in range(1, STEPS + 1)
        ]

    # no program, nor the sleep it left behind, lives on: not on the lost node, not anywhere
    families = _families(progress)
    assert {trial: [f[3] for f in fams] for trial, fams in families.items()} == {
        trial: (["a", "b"] if trial in on_a else ["b"]) for trial in placed
    }
    pids = [pid for fams in families.values() for family in fams for pid in family[:3]]
    _wait(lambda: not any(_alive(pid) for pid in pids), "every program, shell and sleep to end")
