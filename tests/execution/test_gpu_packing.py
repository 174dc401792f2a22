"""Fractional GPUs on Ray's logical GPUs (no GPU needed): ``raytuner run --gpus 2`` in a
real subprocess, trials that write down the device they were given.

Ray 2.60 alone puts every ``gpu: 0.25`` trial on GPU 0 until it is full; raytuner spreads them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytestmark = [pytest.mark.subprocess, pytest.mark.slow]

RAYTUNER = str(Path(sys.executable).parent / "raytuner")
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short folder: Ray's socket paths under its temp folder must stay under 107 characters."""
    folder = Path(tempfile.mkdtemp(prefix="rtgpu", dir="/tmp"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _spec(folder: Path, trainable: str, samples: int, together: int, gpu: float = 0.25) -> Path:
    probe = folder / "probe"
    probe.mkdir(exist_ok=True)
    if trainable == "command":
        script = FIXTURES / "commands" / "gpu_seen.py"
        trainable = f'{{command: [python, "{script}", "{{probe_dir}}", "{{together}}", "{{x}}"]}}'
    else:
        trainable = f'{{function: "{trainable}"}}'
    spec = folder / "spec.yaml"
    spec.write_text(
        f"""
name: gpu-pack
trainable: {trainable}
metric: score
mode: max
space:
  probe_dir: {probe}
  together: {together}
  x: {{uniform: [0, 1]}}
search: {{algorithm: random, num_samples: {samples}, seed: 3}}
resources: {{cpu: 1, gpu: {gpu}}}
storage: {folder / "runs"}
"""
    )
    return spec


def _run(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "CUDA_VISIBLE_DEVICES")}
    env["RAY_TMPDIR"] = str(folder / "ray")  # this run's own Ray temp folder
    env["PYTHONPATH"] = os.pathsep.join([str(FIXTURES), env.get("PYTHONPATH", "")]).strip(os.pathsep)
    return subprocess.run([RAYTUNER, *args], capture_output=True, text=True, env=env, cwd=folder, timeout=540)


def _probes(folder: Path, suffix: str) -> dict[str, dict]:  # type: ignore[type-arg]
    return {path.stem: json.loads(path.read_text()) for path in (folder / "probe").glob(f"*.{suffix}")}


def test_quarter_gpus_run_eight_at_once_four_on_each_gpu(short_tmp: Path) -> None:
    spec = _spec(short_tmp, "gpu_probe:train", samples=12, together=8)
    done = _run(short_tmp, "run", str(spec), "--gpus", "2", "--cpus", "8", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    placement = events[0]["placement"]
    assert events[0]["event"] == "experiment_started"
    assert (placement["trials_at_once"], placement["per_gpu"], placement["spread"]) == (8, 4, True)
    assert placement["cluster_gpus"] == 2 and placement["logical_gpus"] == 2
    assert "8 at once" in placement["line"] and "4 per GPU" in placement["line"]

    started, seen = _probes(short_tmp, "start"), _probes(short_tmp, "seen")
    assert len(started) == 12
    crowds = [note for note in seen.values() if note["running"] == 8]
    assert len(crowds) >= 8  # the first eight trials all ran at the same time
    for note in seen.values():
        per_device = Counter(note["devices"])
        assert set(per_device) <= {"0", "1"} and max(per_device.values()) <= 4, note
    assert all(Counter(note["devices"]) == {"0": 4, "1": 4} for note in crowds)
    by_pid: dict[int, set[str]] = {}
    for probe in started.values():
        by_pid.setdefault(probe["pid"], set()).add(probe["cuda_visible_devices"])
    assert all(len(devices) == 1 for devices in by_pid.values()), by_pid  # a reused actor keeps its GPU

    trials = pq.read_table(short_tmp / "runs" / "gpu-pack" / "trials.parquet").to_pylist()
    assert len(trials) == 12 and {t["status"] for t in trials} == {"completed"}
    assert {t["trial_id"]: t["gpu_ids"] for t in trials} == {
        trial_id: probe["cuda_visible_devices"] for trial_id, probe in started.items()
    }
    assert {t["resources_gpu"] for t in trials} == {0.25}


@pytest.mark.parametrize("trainable", ["gpu_probe:Probe", "command"])
def test_two_quarter_gpu_trials_get_different_gpus(short_tmp: Path, trainable: str) -> None:
    """Where Ray alone gives both trials GPU 0 and leaves GPU 1 idle: a class, a command."""
    spec = _spec(short_tmp, trainable, samples=2, together=2)
    done = _run(short_tmp, "run", str(spec), "--gpus", "2", "--cpus", "4")
    assert done.returncode == 0, done.stderr[-3000:]
    started = _probes(short_tmp, "start")
    assert sorted(p["cuda_visible_devices"] for p in started.values()) == ["0", "1"]
    if trainable == "command":
        assert all(p["raytuner_gpu_ids"] == p["cuda_visible_devices"] for p in started.values())
    else:
        assert [p["ray_gpu_ids"] for p in started.values()] == [["0"], ["0"]]  # what Ray alone would have used
    assert "each trial 1 CPU + 0.25 GPU · 2 at once" in done.stdout
    trials = pq.read_table(short_tmp / "runs" / "gpu-pack" / "trials.parquet").to_pylist()
    assert sorted(t["gpu_ids"] for t in trials) == ["0", "1"]


def test_whole_gpus_stay_as_ray_assigns_them_and_too_many_are_refused(short_tmp: Path) -> None:
    spec = _spec(short_tmp, "gpu_probe:train", samples=2, together=2, gpu=1)
    done = _run(short_tmp, "run", str(spec), "--gpus", "2", "--cpus", "2", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    started = _probes(short_tmp, "start")
    assert sorted(p["cuda_visible_devices"] for p in started.values()) == ["0", "1"]
    assert all([p["cuda_visible_devices"]] == p["ray_gpu_ids"] for p in started.values())

    spec = _spec(short_tmp, "gpu_probe:train", samples=2, together=2, gpu=3)
    refused = _run(short_tmp, "run", str(spec), "--gpus", "2", "--cpus", "2")
    assert refused.returncode == 2
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert lines == [
        f"error: {spec}: resources.gpu: each trial asks for 3 GPU, but no node of the Ray cluster has more than 2"
    ], refused.stderr
