"""Trials per second and GPU utilisation with 1, 2 and 4 trials per GPU, on the digits MLP.

For each packing (``resources.gpu`` = 1, 0.5, 0.25) the installed ``raytuner run --json``
tunes the built-in ``mlp_classifier`` on digits (random search, FIFO, a fixed number of
epochs, so every variant does the same work) on the machine's own GPUs. While it runs,
``nvidia-smi`` is sampled every half second (utilisation and memory per GPU). Reported per
variant: trials per second over the experiment (``experiment_started`` ->
``experiment_finished``, Ray's start-up excluded) and over the whole command, mean and peak
GPU utilisation during the experiment, peak GPU memory, and how many trials each GPU ran
(``gpu_ids`` in ``trials.parquet``).

Needs at least one NVIDIA GPU and ``nvidia-smi``; without them it says so and exits with 2.
Writes ``gpu_packing.md`` and ``gpu_packing.json`` to ``--out`` and prints the table.

    .venv/bin/python benchmarks/gpu_packing.py [--trials 32] [--epochs 20] [--per-gpu 1 2 4] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from procs import Command, launch, machine, raytuner_argv, warm_up

SAMPLE_EVERY_S = 0.5

SPEC = """
name: {name}
trainable: {{builtin: mlp_classifier, dataset: digits, max_epochs: {epochs}, seed: 0}}
metric: val_accuracy
mode: max
space:
  lr: {{loguniform: [1.0e-3, 1.0e-1]}}
  hidden: {{choice: [128, 256, 512]}}
  depth: {{randint: [1, 4]}}
  batch_size: {{choice: [32, 64]}}
search: {{algorithm: random, num_samples: {trials}, seed: 7}}
resources: {{cpu: {cpu}, gpu: {gpu}}}
storage: {storage}
"""


class GpuSampler:
    """``nvidia-smi`` every ``SAMPLE_EVERY_S``: (time, gpu index, utilisation %, memory MiB)."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, str, float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> GpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        query = ["nvidia-smi", "--query-gpu=index,utilization.gpu,memory.used", "--format=csv,noheader,nounits"]
        while not self._stop.is_set():
            now = time.time()
            done = subprocess.run(query, capture_output=True, text=True, check=False)
            for line in done.stdout.splitlines():
                cells = [cell.strip() for cell in line.split(",")]
                if len(cells) == 3 and cells[1].replace(".", "").isdigit():
                    self.samples.append((now, cells[0], float(cells[1]), float(cells[2])))
            self._stop.wait(SAMPLE_EVERY_S)

    def between(self, start: float, end: float) -> list[tuple[float, str, float, float]]:
        return [sample for sample in self.samples if start <= sample[0] <= end]


def gpus_present() -> list[str]:
    """Indices of the GPUs ``nvidia-smi`` lists; empty without one."""
    if shutil.which("nvidia-smi") is None:
        return []
    done = subprocess.run(
        ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True, text=True, check=False
    )
    return [line.strip() for line in done.stdout.splitlines() if line.strip()] if done.returncode == 0 else []


def run_variant(per_gpu: int, gpus: int, args: argparse.Namespace, work: Path, cores: int) -> dict[str, Any]:
    name = f"digits-{per_gpu}-per-gpu"
    storage = work / "runs"
    cpu = max(1, min(2, cores // max(1, gpus * per_gpu)))
    spec = work / f"{name}.yaml"
    spec.write_text(
        SPEC.format(name=name, epochs=args.epochs, trials=args.trials, cpu=cpu, gpu=1 / per_gpu, storage=storage)
    )
    with GpuSampler() as sampler:
        launched = launch(Command([*raytuner_argv(), "run", str(spec), "--json"], timeout_s=args.timeout), work / f"{name}.log")
    started = launched.first_event("experiment_started")
    finished = launched.first_event("experiment_finished")
    row: dict[str, Any] = {"per_gpu": per_gpu, "gpu_per_trial": 1 / per_gpu, "cpu_per_trial": cpu, "rc": launched.rc}
    if launched.rc != 0 or started is None or finished is None:
        row["error"] = launched.stderr_tail[-500:]
        return row
    run_s = finished["time"] - started["time"]
    samples = sampler.between(started["time"], finished["time"])
    util = [s[2] for s in samples]
    memory = [s[3] for s in samples]
    import pyarrow.parquet as pq

    trials = pq.read_table(storage / name / "trials.parquet", columns=["status", "gpu_ids"]).to_pylist()
    completed = sum(1 for t in trials if t["status"] == "completed")
    row.update(
        {
            "trials": len(trials),
            "completed": completed,
            "run_s": round(run_s, 2),
            "wall_s": round(launched.wall_s, 2),
            "trials_per_s_run": round(completed / run_s, 3) if run_s > 0 else None,
            "trials_per_s_wall": round(completed / launched.wall_s, 3),
            "gpu_util_mean": round(sum(util) / len(util), 1) if util else None,
            "gpu_util_peak": max(util) if util else None,
            "gpu_memory_peak_mib": max(memory) if memory else None,
            "trials_by_gpu": dict(sorted(Counter(str(t["gpu_ids"]) for t in trials).items())),
            "placement": started.get("placement", {}).get("line"),
        }
    )
    return row


def table(rows: list[dict[str, Any]]) -> str:
    columns = ["trials per GPU", "gpu per trial", "trials ok", "run s", "trials/s (run)", "trials/s (wall)",
               "GPU util mean %", "GPU util peak %", "GPU memory peak MiB", "trials by GPU"]  # fmt: skip
    lines = ["| " + " | ".join(columns) + " |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['per_gpu']} | {row['gpu_per_trial']:g} | failed (rc {row['rc']}) | | | | | | | |")
            continue
        lines.append(
            f"| {row['per_gpu']} | {row['gpu_per_trial']:g} | {row['completed']}/{row['trials']} | {row['run_s']} | "
            f"{row['trials_per_s_run']} | {row['trials_per_s_wall']} | {row['gpu_util_mean']} | {row['gpu_util_peak']} | "
            f"{row['gpu_memory_peak_mib']} | {row['trials_by_gpu']} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--per-gpu", type=int, nargs="+", default=[1, 2, 4], choices=[1, 2, 4, 8])
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per variant")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args()

    gpus = gpus_present()
    if not gpus:
        print("error: no NVIDIA GPU found (nvidia-smi is missing or lists none); this benchmark needs one", file=sys.stderr)
        return 2
    facts = machine()
    cores = int(facts.get("cpu_count") or 1)
    warm_up()
    rows = []
    with tempfile.TemporaryDirectory(prefix="rtgpu-bench-") as folder:
        for per_gpu in args.per_gpu:
            rows.append(run_variant(per_gpu, len(gpus), args, Path(folder), cores))
            print(json.dumps(rows[-1]), flush=True)
    text = table(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    heading = f"GPU packing on digits: {args.trials} trials x {args.epochs} epochs, {len(gpus)} GPU(s)\n\n"
    (args.out / "gpu_packing.md").write_text(heading + text + "\n")
    (args.out / "gpu_packing.json").write_text(json.dumps({"machine": facts, "rows": rows}, indent=2, default=str))
    print(heading + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
