"""The GPUs of this machine, how trials will be placed on them, and GPU failures in words.

The pre-flight report reads the GPUs present (``nvidia-smi``, else ``torch.cuda``, else
none), works out from the Ray cluster's resources how many trials run at once and how many
share each GPU, and says so before the first trial starts. Nothing here imports Ray.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Ray keeps resource amounts in units of 1e-4; a share of one GPU is counted the same way.
_EPS = 1e-4
NVIDIA_SMI_TIMEOUT_S = 10.0
OUT_OF_GPU_MEMORY = "out of GPU memory"
_OOM_LINE = re.compile(r"^(?:[\w.]*OutOfMemoryError):\s*(?P<message>.*)$")


@dataclass(frozen=True)
class GpuDevice:
    """One GPU as the driver found it (``id`` as CUDA_VISIBLE_DEVICES names it)."""

    id: str
    name: str
    memory_mib: int | None


@dataclass(frozen=True)
class GpuInventory:
    devices: tuple[GpuDevice, ...]
    source: str  # "nvidia-smi", "torch" or "none"

    @property
    def count(self) -> int:
        return len(self.devices)

    def describe(self) -> str:
        """``2 x NVIDIA H200 (143771 MiB)``, or ``none detected``."""
        if not self.devices:
            return "none detected"
        kinds: dict[tuple[str, int | None], int] = {}
        for device in self.devices:
            key = (device.name, device.memory_mib)
            kinds[key] = kinds.get(key, 0) + 1
        parts = []
        for (name, memory), n in kinds.items():
            size = f" ({memory} MiB)" if memory else ""
            parts.append(f"{n} x {name}{size}")
        return ", ".join(parts) + f" [{self.source}]"


def detect_gpus(*, use_torch: bool = True) -> GpuInventory:
    """The GPUs this process may use: those ``nvidia-smi`` lists (limited to
    CUDA_VISIBLE_DEVICES when it is set), else those ``torch.cuda`` sees, else none."""
    listed = _nvidia_smi()
    if listed is not None:
        return GpuInventory(tuple(_visible(listed, os.environ.get("CUDA_VISIBLE_DEVICES"))), "nvidia-smi")
    if use_torch:
        found = _torch_gpus()
        if found:
            return GpuInventory(tuple(found), "torch")
    return GpuInventory((), "none")


def _nvidia_smi() -> list[tuple[GpuDevice, str]] | None:
    """(device, uuid) per GPU, or None when nvidia-smi is missing or fails."""
    program = shutil.which("nvidia-smi")
    if program is None:
        return None
    query = [program, "--query-gpu=index,uuid,name,memory.total", "--format=csv,noheader,nounits"]
    try:
        done = subprocess.run(query, capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    out = []
    for line in done.stdout.splitlines():
        cells = [cell.strip() for cell in line.split(",")]
        if len(cells) != 4:
            continue
        index, uuid, name, memory = cells
        out.append((GpuDevice(index, name, int(memory) if memory.isdigit() else None), uuid))
    return out


def _visible(listed: Sequence[tuple[GpuDevice, str]], visible: str | None) -> list[GpuDevice]:
    """The listed GPUs CUDA_VISIBLE_DEVICES lets through, in its order (indices or UUIDs)."""
    if visible is None:
        return [device for device, _ in listed]
    out = []
    for wanted in (part.strip() for part in visible.split(",") if part.strip()):
        for device, uuid in listed:
            if wanted == device.id or uuid.startswith(wanted):
                out.append(device)
                break
    return out


def _torch_gpus() -> list[GpuDevice]:
    try:
        import torch

        if not torch.cuda.is_available():
            return []
        out = []
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            out.append(GpuDevice(str(index), props.name, int(props.total_memory // 2**20)))
        return out
    except Exception:  # noqa: BLE001 - a broken CUDA install means no usable GPU
        return []


def per_device(gpu: float) -> int:
    """How many trials asking for ``gpu`` (a fraction below 1) fit on one GPU."""
    return max(1, int(math.floor(1.0 / gpu + _EPS))) if 0 < gpu < 1 else 1


@dataclass(frozen=True)
class Placement:
    """How the trials of a run fit on the cluster: the pre-flight report."""

    per_trial: dict[str, float]
    cluster_cpus: float
    cluster_gpus: float
    trials_at_once: int
    per_gpu: int | None  # trials sharing one GPU at most; None without GPU trials
    limited_by: str
    spread: bool
    inventory: GpuInventory
    logical_gpus: int | None = None  # --gpus N when it differs from the GPUs detected
    notes: tuple[str, ...] = field(default=())

    def line(self) -> str:
        """One line for the start of a run."""
        gpus = f"{self.cluster_gpus:g} GPU"
        if self.logical_gpus is not None:
            gpus += f" (--gpus {self.logical_gpus}; {self.inventory.describe()})"
        elif self.cluster_gpus or self.inventory.count:
            gpus += f" ({self.inventory.describe()})"
        ask = " + ".join(f"{amount:g} {name}" for name, amount in self.per_trial.items()) or "nothing"
        text = f"resources: {self.cluster_cpus:g} CPU, {gpus} · each trial {ask} · {self.trials_at_once} at once"
        if self.limited_by:
            text += f" (limited by {self.limited_by})"
        gpu = self.per_trial.get("GPU", 0.0)
        if self.per_gpu is not None and gpu < 1:
            text += f", {self.per_gpu} per GPU (room for {per_device(gpu)})"
            text += ", spread evenly over the GPUs" if self.spread else ", placed by Ray"
        elif self.per_gpu is not None:
            text += f", {gpu:g} whole GPU{'s' if gpu > 1 else ''} each"
        return text + "".join(f" · {note}" for note in self.notes)

    def to_json(self) -> dict[str, Any]:
        return {
            "per_trial": self.per_trial,
            "cluster_cpus": self.cluster_cpus,
            "cluster_gpus": self.cluster_gpus,
            "gpus_detected": [
                {"id": d.id, "name": d.name, "memory_mib": d.memory_mib} for d in self.inventory.devices
            ],
            "gpu_source": self.inventory.source,
            "logical_gpus": self.logical_gpus,
            "trials_at_once": self.trials_at_once,
            "per_gpu": self.per_gpu,
            "limited_by": self.limited_by,
            "spread": self.spread,
            "line": self.line(),
        }


def plan_placement(
    wanted: Mapping[str, float],
    nodes: Sequence[Mapping[str, Any]],
    *,
    inventory: GpuInventory,
    max_concurrent: int | None,
    total_trials: int,
    spread: bool,
    requested_gpus: int | None = None,
) -> Placement:
    """How many trials run at once on ``nodes`` (Ray's ``ray.nodes()``), and how many per GPU.

    A fractional GPU request fits ``floor(1 / gpu)`` times on each GPU of a node; whole GPUs
    are divided; every other resource is divided per node, then nodes are added up.
    """
    alive = [node.get("Resources", {}) for node in nodes if node.get("Alive", True)]
    gpu = float(wanted.get("GPU", 0.0))
    fits, binding = 0, ""
    per_resource: dict[str, int] = {}
    for resources in alive:
        counts = {}
        for name, amount in wanted.items():
            have = float(resources.get(name, 0.0))
            if name == "GPU" and amount < 1:
                counts[name] = int(math.floor(have + _EPS)) * per_device(amount)
            else:
                counts[name] = int(math.floor(have / amount + _EPS))
        node_fits = min(counts.values(), default=0) if counts else 0
        fits += node_fits
        for name, n in counts.items():
            per_resource[name] = per_resource.get(name, 0) + n
    if per_resource:
        binding = min(per_resource, key=lambda name: per_resource[name])
    at_once = fits
    limits = {binding: fits} if binding else {}
    if max_concurrent is not None:
        limits["search.max_concurrent"] = max_concurrent
    limits["search.num_samples"] = total_trials
    limited_by = min(limits, key=lambda name: limits[name]) if limits else ""
    at_once = min(limits.values()) if limits else fits
    cluster_cpus = sum(float(res.get("CPU", 0.0)) for res in alive)
    cluster_gpus = sum(float(res.get("GPU", 0.0)) for res in alive)
    per_gpu: int | None = None
    if gpu > 0:
        if gpu >= 1:
            per_gpu = 1
        elif spread and cluster_gpus >= 1:
            per_gpu = min(per_device(gpu), math.ceil(at_once / math.floor(cluster_gpus + _EPS)))
        else:
            per_gpu = min(per_device(gpu), at_once)
    logical = requested_gpus if requested_gpus is not None and requested_gpus != inventory.count else None
    notes: list[str] = []
    if gpu > 0 and inventory.count == 0 and cluster_gpus > 0 and logical is None:
        notes.append("Ray reports GPUs this process cannot see")
    return Placement(
        per_trial=dict(wanted),
        cluster_cpus=cluster_cpus,
        cluster_gpus=cluster_gpus,
        trials_at_once=max(at_once, 0),
        per_gpu=per_gpu,
        limited_by=_limit_name(limited_by),
        spread=spread and 0 < gpu < 1,
        inventory=inventory,
        logical_gpus=logical,
        notes=tuple(notes),
    )


def _limit_name(name: str) -> str:
    return {"CPU": "CPUs", "GPU": "GPUs"}.get(name, name)


def out_of_memory_message(line: str) -> str | None:
    """``out of GPU memory: ...`` for torch's CUDA out-of-memory error line, else None.

    Recognises ``torch.OutOfMemoryError`` (``torch.cuda.OutOfMemoryError`` is the same class)
    and CUDA's own ``CUDA error: out of memory`` raised as a RuntimeError.
    """
    matched = _OOM_LINE.match(line)
    if matched:
        message = matched.group("message")
        return message if message.startswith(OUT_OF_GPU_MEMORY) else f"{OUT_OF_GPU_MEMORY}: {message}"
    if "CUDA out of memory" in line or "CUDA error: out of memory" in line:
        _, _, message = line.partition(": ")
        return f"{OUT_OF_GPU_MEMORY}: {message or line}"
    return None
