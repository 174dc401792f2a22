"""A real two-node Ray cluster on loopback, with token authentication and the Jobs API.

One head (with the dashboard, which serves the Jobs API) and one worker, both started with
``ray start`` bound to 127.0.0.1 in a temp dir of their own, and stopped by the process ids
whose command line names that temp dir: other Rays on the machine are never touched.
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
from loopback_ports import free_ports
from s3_server import S3Server

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@dataclass(frozen=True)
class Cluster:
    gcs: str  # 127.0.0.1:PORT, for raytuner run --address
    jobs: str  # http://127.0.0.1:PORT, the Jobs API
    env: dict[str, str]  # a client shell: the cluster's token, raytuner on PATH, no RAY_AUTH_MODE
    workdir: Path  # what submit uploads: a project folder with the spec
    bucket: str  # s3://BUCKET on an S3 server on loopback that every node reaches (through AWS_ENDPOINT_URL_S3)
    head_home: Path  # the nodes' HOME: where `ray up` would leave ~/ray_bootstrap_config.yaml on the head


def _pids_using(marker: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split() if int(pid) != os.getpid()]


def _stop(temp: Path) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _pids_using(str(temp)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        time.sleep(2)


def _wait_for_jobs_api(url: str, env: dict[str, str], nodes: int) -> None:
    """Until the Jobs API answers and both nodes' agents are up (submit fails before that)."""
    probe = (
        "import sys; from ray.util.state import list_nodes; "
        f"sys.exit(0 if sum(n.state == 'ALIVE' for n in list_nodes(address={url!r})) >= {nodes} else 1)"
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        if subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, timeout=60).returncode == 0:
            return
        time.sleep(2)
    raise TimeoutError(f"the Jobs API at {url} did not come up")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server) -> Iterator[Cluster]:
    temp = tmp_path_factory.mktemp("raymulti")
    token = secrets.token_hex(32)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "AWS_"))}
    base.update(s3_server.env)  # every node, as on cloud VMs with a role: they all reach the bucket
    base["RAYTUNER_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    s3_server.client().create_dir("shared")
    base["PATH"] = f"{BIN}{os.pathsep}{base.get('PATH', '')}"  # the job's shell finds raytuner
    head_home = tmp_path_factory.mktemp("head-home")
    server_env = {**base, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "HOME": str(head_home)}
    port, dashboard, client_server, head_agent, worker_agent = free_ports(5)
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", f"--temp-dir={temp}", "--disable-usage-stats"]
    try:
        subprocess.run(
            [str(BIN / "ray"), "start", "--head", f"--port={port}", "--dashboard-host=127.0.0.1",
             f"--dashboard-port={dashboard}", f"--ray-client-server-port={client_server}",
             f"--dashboard-agent-listen-port={head_agent}", *common],
            check=True, capture_output=True, timeout=180, env=server_env,
        )  # fmt: skip
        subprocess.run(
            [str(BIN / "ray"), "start", f"--address=127.0.0.1:{port}", '--resources={"node2": 1}',
             f"--dashboard-agent-listen-port={worker_agent}", *common],
            check=True, capture_output=True, timeout=180, env=server_env,
        )  # fmt: skip
        jobs = f"http://127.0.0.1:{dashboard}"
        _wait_for_jobs_api(jobs, server_env, nodes=2)
        workdir = tmp_path_factory.mktemp("project")
        shutil.copy(ROOT / "experiments" / "quickstart.yaml", workdir / "quickstart.yaml")
        yield Cluster(f"127.0.0.1:{port}", jobs, {**base, "RAY_AUTH_TOKEN": token}, workdir, "s3://shared", head_home)
    finally:
        _stop(temp)


def _raytuner(cluster: Cluster, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "raytuner"), *args], capture_output=True, text=True, timeout=400,
        cwd=cluster.workdir, env=env or cluster.env,
    )  # fmt: skip


def _events(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_run_places_trials_on_both_nodes(cluster: Cluster, tmp_path: Path) -> None:
    done = _raytuner(
        cluster, "run", "quickstart.yaml", "--address", cluster.gcs, "--json", "--storage", str(tmp_path),
        "--set", "search.num_samples=4",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    events = _events(done.stdout)
    assert events[0]["ray"] == cluster.gcs and events[0]["cluster_cpus"] == 2
    assert events[-1]["state"] == "completed"
    # one CPU per node and one per trial: the trial actors ran on both nodes
    probe = (
        "import json; from ray.util.state import list_actors, list_nodes; "
        f"nodes = {{n.node_id: n.resources_total for n in list_nodes(address={cluster.jobs!r})}}; "
        f"actors = list_actors(address={cluster.jobs!r}, detail=True, limit=1000); "
        "print(json.dumps([[a.class_name, 'node2' in nodes.get(a.node_id, {})] for a in actors]))"
    )
    env = {**cluster.env, "RAY_AUTH_MODE": "token"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    actors = json.loads(out.stdout.splitlines()[-1])
    trainables = [(name, on_node2) for name, on_node2 in actors if "JobSupervisor" not in name]
    assert {on_node2 for _, on_node2 in trainables} == {True, False}, actors


def test_refit_runs_on_the_cluster_as_a_task_with_the_trials_resources(cluster: Cluster, tmp_path: Path) -> None:
    (cluster.workdir / "wine.yaml").write_text(
        "name: wine\ntrainable: {builtin: mlp_classifier, dataset: wine, max_epochs: 2, test_fraction: 0.2}\n"
        "metric: val_accuracy\nmode: max\nspace: {lr: 0.01, hidden: 8}\nsearch: {algorithm: random, num_samples: 1}\n"
        "checkpoint: {every: 0}\n"
    )
    done = _raytuner(cluster, "run", "wine.yaml", "--address", cluster.gcs, "--json", "--storage", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    # a custom resource only the second node has: the refit can only run there
    done = _raytuner(
        cluster, "refit", "wine", "--storage", str(tmp_path), "--address", cluster.gcs, "--epochs", "2",
        "--set", "resources.custom.node2=1",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "epoch 2:" in done.stderr  # progress from the task, epoch by epoch
    ran = json.loads((tmp_path / "wine" / "refit" / "metrics.json").read_text())["ran"]
    assert ran["backend"] == "ray" and ran["resources"] == {"CPU": 1.0, "node2": 1.0}
    assert (tmp_path / "wine" / "refit.parquet").is_file() and (tmp_path / "wine" / "refit" / "model.pt").is_file()


def test_submit_follow_runs_the_experiment_as_a_job(cluster: Cluster, tmp_path: Path) -> None:
    storage = tmp_path / "shared"
    done = _raytuner(
        cluster, "submit", "quickstart.yaml", "--address", cluster.jobs, "--follow", "--storage", str(storage),
        "--set", "search.num_samples=2", "--name", "submitted",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    events = _events(done.stdout)
    assert events[0]["ray"] != "local", events[0]  # the job joined the cluster, no private Ray
    assert events[-1]["state"] == "completed"
    assert json.loads((storage / "submitted" / "status.json").read_text())["state"] == "completed"
    job_id = done.stderr.split("submitted ", 1)[1].split(";", 1)[0]
    listed = _raytuner(cluster, "jobs", "ls", "--address", cluster.jobs, "--json")
    assert listed.returncode == 0, listed.stderr
    assert {row["job_id"]: row["status"] for row in json.loads(listed.stdout)}[job_id] == "SUCCEEDED"
    status = _raytuner(cluster, "jobs", "status", job_id, "--address", cluster.jobs)
    assert status.returncode == 0 and "SUCCEEDED" in status.stdout, status.stdout + status.stderr
    logs = _raytuner(cluster, "jobs", "logs", job_id, "--address", cluster.jobs)
    assert '"state": "completed"' in logs.stdout, logs.stdout + logs.stderr
    unknown = _raytuner(cluster, "jobs", "status", "raytuner-nope", "--address", cluster.jobs)
    assert unknown.returncode == 2 and "no job 'raytuner-nope'" in unknown.stderr, unknown.stderr


def test_a_wrong_or_missing_token_is_refused_with_the_fix(cluster: Cluster, tmp_path: Path) -> None:
    wrong = {**cluster.env, "RAY_AUTH_TOKEN": "wrong"}
    for args in (
        ["jobs", "ls", "--address", cluster.jobs],
        ["submit", "quickstart.yaml", "--address", cluster.jobs, "--storage", str(tmp_path)],
    ):
        done = _raytuner(cluster, *args, env=wrong)
        assert done.returncode == 2, done.stdout + done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "refused the token from RAY_AUTH_TOKEN" in lines[0], done.stderr
        assert "ray get-auth-token" in lines[0]
    home = tmp_path / "home"  # no ~/.ray/auth_token there
    home.mkdir()
    none = {**{k: v for k, v in cluster.env.items() if k != "RAY_AUTH_TOKEN"}, "HOME": str(home)}
    for args in (
        ["jobs", "ls", "--address", cluster.jobs],
        ["submit", "quickstart.yaml", "--address", cluster.jobs, "--storage", str(tmp_path)],
    ):
        done = _raytuner(cluster, *args, env=none)
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stderr.strip().splitlines() == [
            f"error: the Ray cluster at {cluster.jobs} requires a token and none was found: set RAY_AUTH_TOKEN, "
            "or write the cluster's token to ~/.ray/auth_token (`ray get-auth-token` on the head prints it)"
        ]
    assert [p.name for p in tmp_path.iterdir()] == ["home"]  # nothing was written by the refused submit


def test_a_gpu_request_is_refused_before_anything_runs(cluster: Cluster, tmp_path: Path) -> None:
    """No node has a GPU, and no autoscaler could start one: `run` refuses at once; `submit`,
    which sees live nodes only, relays the refusal of its job's own check on the head."""
    before = json.loads(_raytuner(cluster, "jobs", "ls", "--address", cluster.jobs, "--json").stdout)
    gpu = ["--set", "resources.gpu=1", "--storage", str(tmp_path)]
    ran = _raytuner(cluster, "run", "quickstart.yaml", "--address", cluster.gcs, *gpu)
    submitted = _raytuner(cluster, "submit", "quickstart.yaml", "--address", cluster.jobs, *gpu)
    refusal = "resources.gpu: each trial asks for 1 GPU, but no node of the Ray cluster has more than 0"
    for done in (ran, submitted):
        assert done.returncode == 2, done.stdout + done.stderr
        assert refusal in done.stderr.splitlines()[-1] and "Traceback" not in done.stderr, done.stderr
    assert not submitted.stdout and "checks the node types its autoscaler can start" in submitted.stderr
    after = json.loads(_raytuner(cluster, "jobs", "ls", "--address", cluster.jobs, "--json").stdout)
    [job] = [row for row in after if row["job_id"] not in {r["job_id"] for r in before}]
    assert (job["status"], job["driver_exit_code"]) == ("FAILED", 2) and job["job_id"] in submitted.stderr
    assert not any(tmp_path.iterdir())  # no experiment folder was left


def test_submit_to_a_cluster_scaled_to_zero_names_the_node_type_its_job_waits_for(cluster: Cluster, tmp_path: Path) -> None:
    """The launcher's config on the head (as `ray up cluster/aws.yaml` leaves it) has a GPU worker
    type: the job accepts the GPU trial and waits for that node; submit says so and returns."""
    config = cluster.head_home / "ray_bootstrap_config.yaml"
    shutil.copy(ROOT / "cluster" / "aws.yaml", config)
    try:
        done = _raytuner(
            cluster, "submit", "quickstart.yaml", "--address", cluster.jobs, "--storage", str(tmp_path),
            "--set", "resources.gpu=1", "--set", "search.num_samples=1",
        )  # fmt: skip
    finally:
        config.unlink()
    assert done.returncode == 0, done.stdout + done.stderr
    job_id = done.stdout.strip()
    assert done.stdout.splitlines() == [job_id]
    assert (
        f"job {job_id}: no live node holds one trial (1 CPU, 1 GPU) yet: the autoscaler can start a 'gpu_worker' node "
        "(4 CPU, 1 GPU) for it" in done.stderr
    ), done.stderr
    assert _status(cluster, job_id) == "RUNNING"  # waiting for the node, as on a cluster that scaled to zero
    stopped = _raytuner(cluster, "jobs", "stop", job_id, "--address", cluster.jobs)
    assert stopped.returncode == 0, stopped.stderr
    assert _wait_until(cluster, job_id, {"SUCCEEDED", "FAILED", "STOPPED"}, timeout_s=120) == "STOPPED"
    # the run took the job's SIGTERM as a Ctrl-C: it ended `interrupted` and resumable, not `failed`
    # with a trial still `running` (Ray's own SIGTERM handler raised SystemExit mid-fit)
    status = json.loads((tmp_path / "quickstart" / "status.json").read_text())
    assert status["state"] == "interrupted", status


def test_object_storage_holds_the_checkpoints_of_trials_on_every_node(cluster: Cluster, s3_server: S3Server) -> None:
    """A batch job: workers on both nodes write checkpoints to the bucket, the job's driver its tables."""
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    storage = f"{cluster.bucket}/multinode"
    (cluster.workdir / "checkpointed.yaml").write_text(
        "name: checkpointed\ntrainable: {builtin: analytic, objective: branin, iterations: 20}\nmetric: loss\nmode: min\n"
        "space: {x1: {uniform: [-5, 10]}, x2: {uniform: [0, 15]}}\nsearch: {algorithm: random, num_samples: 4}\n"
        "checkpoint: {every: 5}\n"
    )
    done = _raytuner(cluster, "submit", "checkpointed.yaml", "--address", cluster.jobs, "--follow", "--storage", storage)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _events(done.stdout)[-1]["folder"] == f"{storage}/checkpointed"  # the job, run on the head, wrote there

    s3, path = s3_server.client(), "shared/multinode/checkpointed"
    entries = {info.base_name: info for info in s3.get_file_info(pafs.FileSelector(path))}
    trial_dirs = [name for name in entries if name.startswith("analytic_")]
    assert len(trial_dirs) == 4
    for name in trial_dirs:  # 20 iterations, a checkpoint every 5: each trial's last ones, whichever node ran it
        inside = {info.base_name for info in s3.get_file_info(pafs.FileSelector(f"{path}/{name}"))}
        assert any(n.startswith("checkpoint_") for n in inside), (name, inside)
    trials = pq.read_table(f"{path}/trials.parquet", filesystem=s3)
    assert trials.num_rows == 4 and set(trials.column("status").to_pylist()) == {"completed"}
    assert pq.read_table(f"{path}/results.parquet", filesystem=s3).num_rows == 4 * 20


def _status(cluster: Cluster, job_id: str) -> str:
    done = _raytuner(cluster, "jobs", "status", job_id, "--address", cluster.jobs, "--json")
    return str(json.loads(done.stdout)["status"])


def _wait_until(cluster: Cluster, job_id: str, states: set[str], timeout_s: float = 300) -> str:
    deadline = time.time() + timeout_s
    while (state := _status(cluster, job_id)) not in states and time.time() < deadline:
        time.sleep(2)
    return state


def test_submit_without_follow_returns_the_id_and_logs_follow_streams_it(cluster: Cluster, tmp_path: Path) -> None:
    started = time.monotonic()
    done = _raytuner(
        cluster, "submit", "quickstart.yaml", "--address", cluster.jobs, "--storage", str(tmp_path),
        "--set", "search.num_samples=2", "--set", "trainable.sleep_s=0.2", "--name", "unfollowed",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    job_id = done.stdout.strip()
    assert done.stdout.splitlines() == [job_id] and job_id.startswith("raytuner-unfollowed-")
    assert time.monotonic() - started < 60  # returned while the job runs (its trials alone sleep 4 s)
    assert _status(cluster, job_id) in {"PENDING", "RUNNING"}
    followed = _raytuner(cluster, "jobs", "logs", job_id, "--address", cluster.jobs, "--follow")
    assert followed.returncode == 0, followed.stdout + followed.stderr
    assert '"state": "completed"' in followed.stdout
    assert followed.stderr.strip().splitlines()[-1] == f"job {job_id}: SUCCEEDED"
    assert _wait_until(cluster, job_id, {"SUCCEEDED", "FAILED", "STOPPED"}) == "SUCCEEDED"


def test_jobs_stop_ends_a_running_job_stopped(cluster: Cluster, tmp_path: Path) -> None:
    done = _raytuner(
        cluster, "submit", "quickstart.yaml", "--address", cluster.jobs, "--storage", str(tmp_path),
        "--set", "search.num_samples=2", "--set", "trainable.sleep_s=5",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    job_id = done.stdout.strip()
    assert _wait_until(cluster, job_id, {"RUNNING", "SUCCEEDED", "FAILED"}) == "RUNNING"
    deadline = time.time() + 120
    while time.time() < deadline:  # until a trial has reported: it runs (5 s a report) when the stop comes
        logs = _raytuner(cluster, "jobs", "logs", job_id, "--address", cluster.jobs).stdout
        if any(event["event"] == "new_best" for event in _events(logs)):
            break
        time.sleep(1)
    stopped = _raytuner(cluster, "jobs", "stop", job_id, "--address", cluster.jobs)
    assert stopped.returncode == 0 and stopped.stdout.strip() == f"{job_id}: stop requested", stopped.stderr
    assert _wait_until(cluster, job_id, {"SUCCEEDED", "FAILED", "STOPPED"}, timeout_s=120) == "STOPPED"
    status = _raytuner(cluster, "jobs", "status", job_id, "--address", cluster.jobs)
    assert status.returncode != 0 and f"{job_id}: STOPPED" in status.stdout, status.stdout + status.stderr
    again = _raytuner(cluster, "jobs", "stop", job_id, "--address", cluster.jobs)
    assert again.stdout.strip() == f"{job_id}: already finished"
    # the run took the job's SIGTERM as a Ctrl-C: `interrupted`, the trial it cut short `paused` for
    # raytuner resume (it was left `failed` with that trial `running`)
    status = json.loads((tmp_path / "quickstart" / "status.json").read_text())
    assert status["state"] == "interrupted" and status["trials"]["running"] == 0, status
    assert status["trials"]["paused"] >= 1, json.dumps(status["trials"])
