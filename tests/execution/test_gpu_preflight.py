"""The pre-flight report, refusals, the device ledger's choices and GPU errors in words,
without a GPU and (except the last tests) without Ray."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from raytuner.errors import SpecError
from raytuner.execution.devices import DeviceBook, local_gpu_ids
from raytuner.execution.gpus import GpuDevice, GpuInventory, _visible, out_of_memory_message, per_device, plan_placement
from raytuner.execution.preflight import (
    NodeType,
    check_before_start,
    check_placeable,
    local_single_node,
    node_types_of,
    trial_resources,
)

ROOT = Path(__file__).resolve().parents[2]

NONE = GpuInventory((), "none")
H200 = GpuInventory(tuple(GpuDevice(str(i), "NVIDIA H200", 143771) for i in range(2)), "nvidia-smi")


def node(cpu: float, gpu: float = 0, alive: bool = True) -> dict:  # type: ignore[type-arg]
    return {"Alive": alive, "Resources": {"CPU": cpu, **({"GPU": gpu} if gpu else {})}}


def plan(cpu: float, gpu: float, nodes: list, **kw):  # type: ignore[no-untyped-def, type-arg]
    options = {"inventory": H200, "max_concurrent": None, "total_trials": 100, "spread": True, **kw}
    return plan_placement(trial_resources(cpu, gpu, {}), nodes, **options)


@pytest.mark.parametrize(("gpu", "expected"), [(0.25, 4), (0.3, 3), (0.4, 2), (0.5, 2), (0.34, 2), (1 / 3, 3)])
def test_trials_per_gpu_follow_rays_fixed_point_shares(gpu: float, expected: int) -> None:
    assert per_device(gpu) == expected


def test_quarter_gpus_on_two_gpus_run_eight_at_once_four_per_gpu() -> None:
    placement = plan(1, 0.25, [node(16, 2)])
    assert (placement.trials_at_once, placement.per_gpu, placement.limited_by) == (8, 4, "GPUs")
    line = placement.line()
    assert line.startswith("resources: 16 CPU, 2 GPU (2 x NVIDIA H200 (143771 MiB) [nvidia-smi])")
    assert "each trial 1 CPU + 0.25 GPU · 8 at once (limited by GPUs), 4 per GPU (room for 4)" in line
    assert line.endswith("spread evenly over the GPUs")
    assert placement.to_json()["gpus_detected"][0] == {"id": "0", "name": "NVIDIA H200", "memory_mib": 143771}


def test_cores_limit_gpu_trials_and_the_gpus_share_them_evenly() -> None:
    placement = plan(2, 0.25, [node(6, 2)])
    assert (placement.trials_at_once, placement.per_gpu, placement.limited_by) == (3, 2, "CPUs")


def test_max_concurrent_and_sample_count_limit_too() -> None:
    assert plan(1, 0.25, [node(16, 2)], max_concurrent=2).limited_by == "search.max_concurrent"
    few = plan(1, 0.25, [node(16, 2)], total_trials=3)
    assert (few.trials_at_once, few.per_gpu, few.limited_by) == (3, 2, "search.num_samples")


def test_ray_places_fractions_itself_on_clusters() -> None:
    placement = plan(1, 0.5, [node(4, 1), node(4, 2)], spread=False)
    assert placement.trials_at_once == 6 and not placement.spread
    assert "placed by Ray" in placement.line()


def test_whole_gpus_and_cpu_only_trials() -> None:
    whole = plan(1, 2, [node(8, 4), node(8, 1)])
    assert (whole.trials_at_once, whole.per_gpu) == (2, 1)
    assert "2 whole GPUs each" in whole.line()
    cpu_only = plan(2, 0, [node(8)], inventory=NONE)
    assert (cpu_only.trials_at_once, cpu_only.per_gpu) == (4, None)
    assert cpu_only.line() == "resources: 8 CPU, 0 GPU · each trial 2 CPU · 4 at once (limited by CPUs)"


def test_logical_gpus_are_said_to_be_logical() -> None:
    placement = plan(1, 0.5, [node(4, 2)], inventory=NONE, requested_gpus=2)
    assert placement.logical_gpus == 2
    assert "2 GPU (--gpus 2; none detected)" in placement.line()


def test_dead_nodes_do_not_count() -> None:
    assert plan(1, 0.25, [node(16, 2), node(16, 8, alive=False)]).trials_at_once == 8


def test_unplaceable_requests_are_refused_in_one_line() -> None:
    with pytest.raises(SpecError) as caught:
        check_placeable(trial_resources(1, 0.25, {}), [node(8)], "spec.yaml", local=True)
    message = str(caught.value)
    assert "resources.gpu" in message and "each trial asks for 0.25 GPU" in message and "more than 0" in message
    assert "--gpus N" in message and "\n" not in message
    with pytest.raises(SpecError, match=r"asks for 2 GPU, but no node of the Ray cluster has more than 1$"):
        check_placeable(trial_resources(1, 2, {}), [node(8, 1), node(8, 1)], "spec.yaml")
    check_placeable(trial_resources(1, 2, {}), [node(8, 1), node(8, 2)], "spec.yaml")  # one node is enough


def test_a_private_ray_too_small_is_refused_before_it_starts() -> None:
    """Only what --cpus/--gpus fix is known before the private Ray starts; the rest is checked after."""
    with pytest.raises(SpecError, match=r"resources.gpu: each trial asks for 3 GPU, but .* more than 2$"):
        check_before_start(trial_resources(1, 3, {}), None, 2, "spec.yaml")
    with pytest.raises(SpecError, match=r"resources.cpu: each trial asks for 4 CPU, but .* more than 2$"):
        check_before_start(trial_resources(4, 0, {}), 2, None, "spec.yaml")
    with pytest.raises(SpecError, match=r"resources.custom.tpu: each trial asks for 1 tpu"):
        check_before_start(trial_resources(1, 0, {"tpu": 1}), None, None, "spec.yaml")
    check_before_start(trial_resources(64, 8, {}), None, None, "spec.yaml")  # sizes Ray detects: not known yet
    check_before_start(trial_resources(2, 0.5, {}), 2, 1, "spec.yaml")


def test_spreading_is_for_one_local_node_only() -> None:
    assert local_single_node([node(4, 2)], joined=False)
    assert not local_single_node([node(4, 2)], joined=True)
    assert not local_single_node([node(4, 2), node(4, 2)], joined=False)


def test_cuda_visible_devices_limits_what_nvidia_smi_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    listed = [(GpuDevice(str(i), "GPU", 1000), f"GPU-{i}aaa") for i in range(4)]
    assert [d.id for d in _visible(listed, None)] == ["0", "1", "2", "3"]
    assert [d.id for d in _visible(listed, "3,1")] == ["3", "1"]
    assert [d.id for d in _visible(listed, "GPU-2")] == ["2"]
    assert _visible(listed, "") == []
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert local_gpu_ids(2) == ["2", "3"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert local_gpu_ids(3) == ["0", "1", "2"]


# ---------------------------------------------------------------------------- the ledger


def test_new_processes_go_to_the_least_loaded_gpu() -> None:
    book = DeviceBook(["0", "1"], spread=True, alive=lambda pid: True)
    chosen = [book.claim(f"t{i}", pid=100 + i, ray_ids=["0"])[0] for i in range(8)]
    assert chosen == ["0", "1"] * 4  # Ray said "0" every time
    assert book.load() == {"0": (4, 4), "1": (4, 4)}
    assert book.lookup(["t1", "t2", "nope"]) == {"t1": ["1"], "t2": ["0"]}


def test_a_reused_process_keeps_its_gpu_and_its_slot() -> None:
    book = DeviceBook(["0", "1"], spread=True, alive=lambda pid: True)
    book.claim("a", 1, ["0"])  # -> 0
    book.claim("b", 2, ["0"])  # -> 1
    book.claim("c", 3, ["0"])  # -> 0
    book.release("a")  # process 1 idles on GPU 0, waiting to be reused
    assert book.claim("d", 4, ["0"]) == ["1"]  # GPU 0 still has two processes
    assert book.claim("e", 1, ["0"]) == ["0"]  # process 1 is reused: same GPU
    assert book.load() == {"0": (2, 2), "1": (2, 2)}


def test_a_process_that_exited_frees_its_slot() -> None:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = int(finished.stdout)  # a real process id that no longer runs
    book = DeviceBook(["0", "1"], spread=True)
    book.claim("a", gone, ["0"])  # -> 0
    here = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert book.claim("b", here.pid, ["0"]) == ["0"]  # "1" if the dead process still counted
        assert book.claim("c", os.getpid(), ["0"]) == ["1"]  # the live one does
        assert gone not in book.bindings
    finally:
        here.kill()
        here.wait()


def test_without_spreading_rays_ids_are_recorded_as_they_are() -> None:
    book = DeviceBook(["0", "1"], spread=False)
    assert book.claim("a", 1, ["0"]) == ["0"]
    assert book.claim("b", 2, ["1", "0"]) == ["1", "0"]
    assert book.claim("c", 3, []) == []
    assert book.lookup(["a", "b", "c"]) == {"a": ["0"], "b": ["1", "0"], "c": []}
    whole = DeviceBook(["0", "1"], spread=True)
    assert whole.claim("a", 1, ["1", "0"]) == ["1", "0"]  # several whole GPUs: Ray's choice


# ---------------------------------------------------------------------------- errors in words


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
            "out of GPU memory: CUDA out of memory. Tried to allocate 2.00 GiB",
        ),
        ("torch.cuda.OutOfMemoryError: CUDA out of memory.", "out of GPU memory: CUDA out of memory."),
        ("RuntimeError: CUDA error: out of memory", "out of GPU memory: CUDA error: out of memory"),
        (
            "raytuner.workloads.torch.trainable.GpuOutOfMemoryError: out of GPU memory: CUDA out of memory.",
            "out of GPU memory: CUDA out of memory.",
        ),
        ("ValueError: x is positive", None),
        ("MemoryError", None),
    ],
)
def test_cuda_out_of_memory_lines_are_said_plainly(line: str, expected: str | None) -> None:
    assert out_of_memory_message(line) == expected


@pytest.mark.ray
@pytest.mark.slow
def test_a_trial_out_of_gpu_memory_is_recorded_as_such(ray_session: None, storage: Path) -> None:
    from raytuner.execution.events import Recorder
    from raytuner.execution.runner import RunOptions, run_experiment
    from raytuner.spec.loader import load_experiment_text

    text = f"""
name: oom
trainable: {{function: "gpu_probe:out_of_gpu_memory"}}
metric: score
mode: max
space: {{x: {{uniform: [0, 1]}}}}
search: {{algorithm: random, num_samples: 1, seed: 1}}
storage: {storage}
"""
    summary = run_experiment(load_experiment_text(text), RunOptions(), Recorder())
    trials = pq.read_table(summary.folder / "trials.parquet").to_pylist()
    assert [t["status"] for t in trials] == ["error"]
    assert trials[0]["error"] == "out of GPU memory: CUDA out of memory. Tried to allocate 20.00 GiB (probe)"
    assert trials[0]["gpu_ids"] is None  # asked for no GPU: nothing to record
    assert Counter(t["resources_gpu"] for t in trials) == {0.0: 1}


def _launcher_types(name: str) -> list[NodeType]:
    import yaml

    return node_types_of(yaml.safe_load((ROOT / "cluster" / name).read_text()))


# A cluster fresh from `ray up`: only the head, which cluster/aws.yaml and gcp.yaml give no CPU.
HEAD_ONLY = [{"Resources": {"CPU": 0.0, "memory": 8e9, "node:__internal_head__": 1.0}, "Alive": True}]


@pytest.mark.parametrize("config", ["aws.yaml", "gcp.yaml"])
def test_a_fresh_launched_cluster_accepts_what_a_worker_type_holds(config: str) -> None:
    types = _launcher_types(config)
    assert {kind.name for kind in types} == {"cpu_worker", "gpu_worker"}  # the head's own type is not one
    assert check_placeable({"CPU": 1.0}, HEAD_ONLY, "s.yaml", node_types=lambda: types).name == "cpu_worker"
    assert check_placeable({"CPU": 1.0, "GPU": 0.25}, HEAD_ONLY, "s.yaml", node_types=lambda: types).name == "gpu_worker"
    with pytest.raises(SpecError) as caught:
        check_placeable({"CPU": 16.0}, HEAD_ONLY, "s.yaml", node_types=lambda: types)
    assert str(caught.value) == (
        "s.yaml: resources.cpu: each trial asks for 16 CPU, but no node of the Ray cluster has more than 0, "
        "nor any node type its autoscaler can start (cpu_worker, gpu_worker) more than 8"
    )
    with pytest.raises(SpecError, match="each trial asks for 2 GPU.*more than 1$"):
        check_placeable({"GPU": 2.0}, HEAD_ONLY, "s.yaml", node_types=lambda: types)


def test_without_an_autoscaler_only_live_nodes_count() -> None:
    with pytest.raises(SpecError, match="each trial asks for 1 CPU, but no node of the Ray cluster has more than 0$"):
        check_placeable({"CPU": 1.0}, HEAD_ONLY, "s.yaml", node_types=lambda: None)
    assert check_placeable({"CPU": 1.0}, [{"Resources": {"CPU": 2.0}}], "s.yaml", node_types=lambda: None) is None


def test_a_private_ray_never_asks_for_node_types() -> None:
    def asked() -> list[NodeType]:
        raise AssertionError("a private Ray has no autoscaler")

    with pytest.raises(SpecError, match="no node of the Ray cluster has more than 0"):
        check_placeable({"GPU": 1.0}, [{"Resources": {"CPU": 2.0}}], "s.yaml", local=True, node_types=asked)


def test_node_types_skip_the_head_and_types_that_cannot_start() -> None:
    config = {
        "max_workers": 4,
        "head_node_type": "head",
        "available_node_types": {
            "head": {"resources": {"CPU": 0}},
            "big": {"resources": {"CPU": 64}, "max_workers": 0},
            "auto": {"node_config": {}},  # resources left to Ray's detection: nothing to check
            "small": {"resources": {"CPU": 2}},
        },
    }
    assert node_types_of(config) == [NodeType("small", {"CPU": 2.0}, 4)]
    assert node_types_of({**config, "max_workers": 0}) == []
