"""Runs on object storage: a real S3 API (moto's server on loopback), real `raytuner` processes.

Ray writes its state and checkpoints to the bucket itself; raytuner's tables reach it through
a mirrored working copy. What is asserted is read back from the bucket with pyarrow, not
through raytuner, and a resume starts from an empty cache, as on another machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from s3_server import S3Server

pytestmark = [pytest.mark.subprocess, pytest.mark.slow]

RAYTUNER = str(Path(sys.executable).parent / "raytuner")
SPEC = """
name: remote
trainable: {builtin: analytic, iterations: 6, sleep_s: 0.3}
metric: loss
mode: min
space: {x: {uniform: [-1, 1]}}
search: {algorithm: hyperopt, num_samples: 4, max_concurrent: 1, n_initial_points: 2, seed: 3}
checkpoint: {every: 2}
"""


@pytest.fixture
def endpoint(s3_server: S3Server) -> str:
    return s3_server.endpoint


@pytest.fixture
def bucket(s3_server: S3Server, request: pytest.FixtureRequest) -> tuple[pafs.S3FileSystem, str]:
    """A fresh bucket named after the test, and a pyarrow client for checking it independently."""
    s3 = s3_server.client()
    name = request.node.name.removeprefix("test_")[:40].replace("_", "-").strip("-")
    s3.create_dir(name)
    return s3, name


def _env(endpoint: str, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS" and not k.startswith("AWS_")}
    env.update(S3Server(endpoint).env)  # how users point pyarrow (and so Ray) at an S3-compatible server
    env.update({"RAYTUNER_CACHE": str(cache), "TUNE_GLOBAL_CHECKPOINT_S": "1"})
    return env


def _names(s3: pafs.S3FileSystem, path: str) -> set[str]:
    return {info.base_name for info in s3.get_file_info(pafs.FileSelector(path, allow_not_found=True))}


def test_a_run_writes_everything_to_the_bucket_and_every_reader_finds_it(
    bucket: tuple[pafs.S3FileSystem, str], endpoint: str, tmp_path: Path
) -> None:
    s3, name = bucket
    (tmp_path / "spec.yaml").write_text(SPEC + "execution: {loggers: [mlflow]}\n")  # its default store: in the folder
    env = _env(endpoint, tmp_path / "cache")
    storage = f"s3://{name}/team"
    run = subprocess.run(
        [RAYTUNER, "run", "spec.yaml", "--storage", storage, "--cpus", "2"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert f"experiment folder: {storage}/remote" in " ".join(run.stdout.split())  # however the console wraps it
    assert not (tmp_path / "runs").exists()  # nothing written to the default local storage

    folder = f"{name}/team/remote"
    names = _names(s3, folder)
    assert {"spec.yaml", "environment.json", "status.json", "trials.parquet", "results.parquet"} <= names
    assert "results.parts" not in names  # compacted, and the parts removed from the bucket too
    assert any(n.startswith("experiment_state-") for n in names)  # Ray's own state, written by Ray
    trial_dirs = [n for n in names if n.startswith("analytic_")]
    assert len(trial_dirs) == 4
    kept = [n for n in _names(s3, f"{folder}/{trial_dirs[0]}") if n.startswith("checkpoint_")]
    assert len(kept) == 2  # of 3 (iterations 2, 4, 6): checkpoint.keep's default, the other deleted in the bucket

    trials = pq.read_table(f"{folder}/trials.parquet", filesystem=s3).to_pylist()
    assert len(trials) == 4 and {t["status"] for t in trials} == {"completed"}
    results = pq.read_table(f"{folder}/results.parquet", filesystem=s3)
    assert results.num_rows == 4 * 6
    with s3.open_input_stream(f"{folder}/status.json") as stream:
        assert json.loads(stream.read())["state"] == "completed"
    tracked = s3.get_file_info(pafs.FileSelector(f"{folder}/mlruns", recursive=True))
    losses = [info.path for info in tracked if info.path.endswith("/metrics/loss")]
    assert len(losses) == 4  # MLflow's file store, one run per trial, uploaded with the tables
    with s3.open_input_stream(losses[0]) as stream:
        assert len(stream.read().decode().splitlines()) == 6  # every report

    listed = subprocess.run([RAYTUNER, "ls", "--storage", storage, "--json"], capture_output=True, text=True, env=env, timeout=60)
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["name"], row["state"], row["folder"]) == ("remote", "completed", f"{storage}/remote")
    best = subprocess.run(
        [RAYTUNER, "best", "remote", "--storage", storage, "--format", "json"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert best.returncode == 0, best.stderr
    assert json.loads(best.stdout)["config"]["x"] == pytest.approx(min(trials, key=lambda t: t["metric_best"])["config/x"])
    assert json.loads(best.stdout)["checkpoint"].startswith(f"{storage}/remote/analytic_")
    best_trial = min(trials, key=lambda t: t["metric_best"])
    assert (best_trial["checkpoint_best_iteration"], best_trial["checkpoint_last_iteration"]) == (6, 6)  # loss falls: the last
    copied = subprocess.run(
        [RAYTUNER, "checkpoint", "remote", "--storage", storage, "-o", str(tmp_path / "best-checkpoint")],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert copied.returncode == 0, copied.stderr
    assert json.loads((tmp_path / "best-checkpoint" / "state.json").read_text()) == {"iteration": 6}  # from the bucket
    report = subprocess.run(
        [RAYTUNER, "report", f"{storage}/remote", "-o", str(tmp_path / "report.html")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr
    assert "<svg" in (tmp_path / "report.html").read_text()


def test_a_driver_killed_mid_run_resumes_from_the_bucket_alone(
    bucket: tuple[pafs.S3FileSystem, str], endpoint: str, tmp_path: Path
) -> None:
    s3, name = bucket
    # trials of 5 s: the two left are still to run when the driver is killed, on a slow machine too
    (tmp_path / "spec.yaml").write_text(SPEC.replace("sleep_s: 0.3", "sleep_s: 0.8"))
    storage = f"s3://{name}/runs"
    proc = subprocess.Popen(
        [RAYTUNER, "run", "spec.yaml", "--storage", storage, "--cpus", "2", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_env(endpoint, tmp_path / "cache-a"), cwd=tmp_path,
    )  # fmt: skip
    done: set[str] = set()
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            event = json.loads(line)
            if event["event"] == "trial_completed":
                done.add(event["trial_id"])
            if len(done) == 2:
                break
        time.sleep(7)  # past one mirror round (5 s) and Ray's state save (1 s): both trials are in the bucket
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert len(done) == 2

    # another machine: an empty cache, only the bucket
    folder = f"{name}/runs/remote"
    resume = subprocess.Popen(
        [RAYTUNER, "resume", f"{storage}/remote", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(endpoint, tmp_path / "cache-b"), cwd=tmp_path,
    )  # fmt: skip
    lines, drivers = [], []
    assert resume.stdout is not None
    for line in resume.stdout:
        lines.append(line)
        if json.loads(line)["event"] in ("progress", "trial_completed"):  # the bucket's status while the resumed run goes on
            drivers.append(json.loads(s3.open_input_file(f"{folder}/status.json").read())["driver"]["pid"])
    stderr = resume.stderr.read() if resume.stderr else ""
    assert resume.wait(timeout=300) == 0, "".join(lines)[-2000:] + stderr[-2000:]
    # Ray copies the bucket's top-level JSON into its staging folder on restore and uploads it back at every
    # save: the killed driver's status.json must not come back over the live one
    assert drivers and set(drivers) == {resume.pid}, drivers
    events = [json.loads(line) for line in lines]
    started = {e["trial_id"] for e in events if e["event"] == "trial_started"}
    assert started and not started & done  # the unfinished ones run, the finished ones not again
    assert events[-1]["state"] == "completed" and events[-1]["folder"] == f"{storage}/remote"

    trials = pq.read_table(f"{folder}/trials.parquet", filesystem=s3).to_pandas()
    assert len(trials) == 4 and set(trials["status"]) == {"completed"}, trials[["trial_id", "status"]]
    assert done <= set(trials["trial_id"])
    results = pq.read_table(f"{folder}/results.parquet", filesystem=s3).to_pandas()
    per_trial = results.groupby("trial_id")["training_iteration"].apply(sorted)
    assert len(per_trial) == 4 and all(list(its) == list(range(1, 7)) for its in per_trial), per_trial.to_dict()
    assert "results.parts" not in _names(s3, folder)
    for trial_dir in trials["trial_dir"]:  # in the bucket, the 2 checkpoints kept (iterations 4, 6), each trial's list names them
        kept = sorted(n for n in _names(s3, trial_dir) if n.startswith("checkpoint_"))
        listed = json.loads(s3.open_input_file(f"{trial_dir}/checkpoints.json").read())  # [folder, iteration, time, value]
        assert ([row[1] for row in listed], [row[0] for row in listed]) == ([4, 6], kept), (trial_dir, kept, listed)


def test_an_unreachable_bucket_is_refused_before_ray_starts(endpoint: str, tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(SPEC)
    run = subprocess.run(
        [RAYTUNER, "run", "spec.yaml", "--storage", "s3://no-such-bucket/runs"],
        capture_output=True, text=True, env=_env(endpoint, tmp_path / "cache"), cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot write experiment folders under s3://no-such-bucket/runs" in lines[0], run.stderr
    assert "Traceback" not in run.stderr and "Ray local" not in run.stdout


def test_a_scheme_raytuner_cannot_run_on_is_refused_at_validation(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(SPEC + "storage: ftp://files.example/runs\n")
    check = subprocess.run([RAYTUNER, "validate", "spec.yaml"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert check.returncode == 2
    assert "ftp:// is not a storage raytuner can run on" in check.stderr and "spec.yaml:" in check.stderr


SECRET = "plantedsecret123"


def _holds_secret(data: bytes) -> bool:
    """The secret as text, or as Ray writes pickles into its JSON state (hex)."""
    return SECRET.encode() in data or SECRET.encode().hex().encode() in data


def test_credentials_and_options_in_the_uri_work_and_are_never_written(
    bucket: tuple[pafs.S3FileSystem, str], endpoint: str, tmp_path: Path
) -> None:
    s3, name = bucket
    (tmp_path / "spec.yaml").write_text(SPEC.replace("num_samples: 4", "num_samples: 2"))
    # no credentials, endpoint or region in the environment: the URI alone reaches the server
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS" and not k.startswith("AWS_")}
    env.update({"RAYTUNER_CACHE": str(tmp_path / "cache"), "AWS_EC2_METADATA_DISABLED": "true"})
    options = f"endpoint_override={endpoint.removeprefix('http://')}&scheme=http&region=us-east-1"
    storage = f"s3://testing:{SECRET}@{name}/runs?{options}"
    run = subprocess.run(
        [RAYTUNER, "run", "spec.yaml", "--storage", storage, "--cpus", "2", "--json"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    finished = json.loads(run.stdout.strip().splitlines()[-1])
    assert finished["folder"] == f"s3://{name}/runs/remote?{options}"  # the name joined onto the path
    assert not _holds_secret((run.stdout + run.stderr).encode())

    objects = [i.path for i in s3.get_file_info(pafs.FileSelector(name, recursive=True)) if i.type == pafs.FileType.File]
    assert f"{name}/runs/remote/trials.parquet" in objects
    for path in objects:
        with s3.open_input_stream(path) as stream:
            assert not _holds_secret(stream.read()), path
    cached = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert any(p.name == "spec.yaml" for p in cached)
    for path in cached:
        assert not _holds_secret(path.read_bytes()), path

    with s3.open_input_stream(f"{name}/runs/remote/environment.json") as stream:
        command = json.loads(stream.read())["command"]
    assert f"s3://{name}/runs?{options}" in command  # the command line, its credentials left out
    shown = subprocess.run(
        [RAYTUNER, "best", "remote", "--storage", storage, "--format", "json"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert shown.returncode == 0 and not _holds_secret((shown.stdout + shown.stderr).encode()), shown.stderr
    refused = subprocess.run(
        [RAYTUNER, "run", "spec.yaml", "--storage", f"s3://testing:{SECRET}@no-such-bucket/runs?{options}"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "cannot write experiment folders under s3://no-such-bucket/runs?endpoint_override" in refused.stderr
    assert not _holds_secret(refused.stderr.encode())
