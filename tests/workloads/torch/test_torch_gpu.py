"""The built-in workloads on a real GPU: device, memory given back, out-of-memory in words,
and a packed digits sweep through the installed command. Skipped without CUDA."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from raytuner.spec.torch_options import OPTIONS_BY_BUILTIN
from raytuner.workloads.torch.trainable import GpuOutOfMemoryError, device_scope, trial_device
from raytuner.workloads.torch.training import TrainingRun

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]

RAYTUNER = str(Path(sys.executable).parent / "raytuner")
GIB = 2**30


def test_a_gpu_trial_trains_on_cuda_and_gives_its_memory_back() -> None:
    device = trial_device(0.5)
    assert device.type == "cuda"
    before = torch.cuda.memory_allocated()
    options = OPTIONS_BY_BUILTIN["mlp_classifier"].model_validate(
        {"builtin": "mlp_classifier", "dataset": "digits", "max_epochs": 2}
    )
    with device_scope(device):
        run = TrainingRun(options, {"hidden": 64, "depth": 2, "batch_size": 64, "lr": 0.01}, device=device)
        metrics = run.step()
        assert all(p.is_cuda for p in run.folds[0].network.parameters())
        ballast = torch.empty(GIB, dtype=torch.uint8, device=device)
        assert torch.cuda.memory_reserved() >= GIB
        del run, ballast
    assert metrics["val_accuracy"] > 0.1
    assert torch.cuda.memory_allocated() == before
    assert torch.cuda.memory_reserved() < GIB  # the cache went back to the driver


def test_out_of_gpu_memory_is_an_error_that_says_so_and_frees_the_rest() -> None:
    before = torch.cuda.memory_allocated()
    total = torch.cuda.get_device_properties(0).total_memory
    with pytest.raises(GpuOutOfMemoryError, match=r"^out of GPU memory: CUDA out of memory"):  # noqa: SIM117
        with device_scope(torch.device("cuda")):
            kept = torch.empty(GIB, dtype=torch.uint8, device="cuda")  # noqa: F841 - freed by the scope
            torch.empty(4 * total, dtype=torch.uint8, device="cuda")
    assert torch.cuda.memory_allocated() == before


@pytest.mark.slow
@pytest.mark.subprocess
def test_digits_sweep_packs_two_trials_on_each_gpu() -> None:
    folder = Path(tempfile.mkdtemp(prefix="rtcuda", dir="/tmp"))
    try:
        spec = folder / "spec.yaml"
        spec.write_text(
            f"""
name: digits-gpu
trainable: {{builtin: mlp_classifier, dataset: digits, max_epochs: 5, seed: 0}}
metric: val_accuracy
mode: max
space: {{lr: {{loguniform: [1.0e-3, 1.0e-1]}}, hidden: {{choice: [64, 128]}}}}
search: {{algorithm: random, num_samples: 8, seed: 1}}
resources: {{cpu: 1, gpu: 0.5}}
storage: {folder / "runs"}
"""
        )
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        env["RAY_TMPDIR"] = str(folder / "ray")
        done = subprocess.run([RAYTUNER, "run", str(spec), "--json"], capture_output=True, text=True, env=env, timeout=540)
        assert done.returncode == 0, done.stderr[-3000:]
        start = json.loads(done.stdout.splitlines()[0])
        gpus = int(start["cluster_gpus"])
        assert gpus >= 1 and start["placement"]["gpus_detected"]
        trials = pq.read_table(folder / "runs" / "digits-gpu" / "trials.parquet").to_pylist()
        assert {t["status"] for t in trials} == {"completed"}
        used = Counter(t["gpu_ids"] for t in trials)
        assert set(used) <= {str(i) for i in range(gpus)}
        assert max(t["last/val_accuracy"] for t in trials) > 0.9
    finally:
        shutil.rmtree(folder, ignore_errors=True)
