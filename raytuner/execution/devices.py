"""Which GPU each trial uses: fractional GPUs spread evenly, and every trial's devices recorded.

Ray 2.60 places fractional GPU requests best-fit: four trials of ``gpu: 0.25`` on a machine
with two GPUs all get GPU 0 while GPU 1 stays idle (ray-project/ray issues 5902, 14759).
Ray's accounting still bounds how many trials run at once (eight here), so raytuner keeps
Ray's count and chooses the device itself. A small ledger actor knows which worker process
is bound to which GPU; each trial, before anything touches CUDA, asks it for a device and
sets CUDA_VISIBLE_DEVICES to it. A new process gets the least loaded GPU; a reused actor
keeps the GPU its process already initialised CUDA on (its slot stays its own while Ray
caches it); a process that exited frees its slot. With every trial asking the same share
``1/k``, no GPU ever has more than ``k`` trials, and none has two more than another when
trials start.

This needs every worker on the driver's machine: it is used for the embedded (or
in-process) local Ray. On a cluster joined with ``--address`` Ray's own assignment stands;
either way each trial's devices are recorded (``gpu_ids`` in ``trials.parquet``).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ray.tune import Callback

from raytuner.results.records import ExperimentBook

CUDA_VISIBLE = "CUDA_VISIBLE_DEVICES"
LOOKUP_TIMEOUT_S = 10.0


@dataclass
class Binding:
    device: str
    trial_id: str | None  # None: the process is idle (a cached actor waiting for reuse)


class DeviceBook:
    """The ledger's logic (plain Python, tested without Ray).

    Args:
        devices: GPU ids as CUDA_VISIBLE_DEVICES names them.
        spread: choose devices (True) or only record the ones Ray assigned (False).
        alive: whether a process id still runs (a process that exited frees its slot).
    """

    def __init__(self, devices: Sequence[str], spread: bool, alive: Callable[[int], bool] | None = None) -> None:
        self.devices = list(devices)
        self.spread = spread and bool(self.devices)
        self.alive = alive or _pid_alive
        self.bindings: dict[int, Binding] = {}
        self.assigned: dict[str, list[str]] = {}  # trial id -> devices it used (last run)

    def claim(self, trial_id: str, pid: int, ray_ids: Sequence[str]) -> list[str]:
        """The devices trial ``trial_id`` in process ``pid`` must use.

        ``ray_ids`` are the GPUs Ray assigned; they are the answer unless spreading applies
        (one fractional GPU, spreading on).
        """
        if not self.spread or len(ray_ids) != 1:
            self.assigned[trial_id] = list(ray_ids)
            return list(ray_ids)
        binding = self.bindings.get(pid)
        if binding is None:
            self._prune()
            binding = Binding(self._least_loaded(), trial_id)
            self.bindings[pid] = binding
        binding.trial_id = trial_id
        self.assigned[trial_id] = [binding.device]
        return [binding.device]

    def release(self, trial_id: str) -> None:
        """The trial ended; its process keeps its device while Ray may reuse it."""
        for binding in self.bindings.values():
            if binding.trial_id == trial_id:
                binding.trial_id = None

    def lookup(self, trial_ids: Sequence[str]) -> dict[str, list[str]]:
        return {trial_id: self.assigned[trial_id] for trial_id in trial_ids if trial_id in self.assigned}

    def load(self) -> dict[str, tuple[int, int]]:
        """Per device: (processes bound, trials running)."""
        out = {device: (0, 0) for device in self.devices}
        for binding in self.bindings.values():
            bound, running = out[binding.device]
            out[binding.device] = (bound + 1, running + (binding.trial_id is not None))
        return out

    def _least_loaded(self) -> str:
        load = self.load()
        order = {device: index for index, device in enumerate(self.devices)}
        # A process that is exiting may still count for a moment: running trials break ties.
        return min(self.devices, key=lambda device: (load[device][0], load[device][1], order[device]))

    def _prune(self) -> None:
        for pid in [pid for pid in self.bindings if not self.alive(pid)]:
            del self.bindings[pid]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_ledger(devices: Sequence[str], spread: bool) -> tuple[Any, str]:
    """Start the ledger actor for one run; returns (handle, name). No CPU is reserved for it."""
    import ray

    name = f"raytuner-devices-{uuid.uuid4().hex[:12]}"
    handle: Any = ray.remote(DeviceBook).options(name=name, num_cpus=0).remote(list(devices), spread)
    ray.get(handle.lookup.remote([]))  # started before the first trial asks
    return handle, name


def local_gpu_ids(count: int) -> list[str]:
    """The ids Ray gives the GPUs of a local Ray: CUDA_VISIBLE_DEVICES's entries, else 0..n-1."""
    visible = os.environ.get(CUDA_VISIBLE)
    if visible:
        ids = [part.strip() for part in visible.split(",") if part.strip()]
        if len(ids) >= count:
            return ids[:count]
    return [str(index) for index in range(count)]


# ---------------------------------------------------------------------------- inside a trial

_claimed: list[str] | None = None  # the GPUs this process's current trial claimed


def trial_gpu_ids() -> list[str]:
    """The GPUs of the trial running in this worker: those raytuner chose, else Ray's."""
    if _claimed is not None:
        return list(_claimed)
    import ray

    if not ray.is_initialized():  # an inline trial (CPU only): asking would start a Ray
        return []
    return [str(gpu) for gpu in ray.get_runtime_context().get_accelerator_ids().get("GPU", [])]


def claim_devices(ledger_name: str, trial_id: str) -> list[str]:
    """Ask the run's ledger which GPUs this trial uses, and make them the only visible ones.

    Called first thing in a trial, before CUDA is initialised in the process.
    """
    global _claimed
    import ray

    ray_ids = [str(gpu) for gpu in ray.get_gpu_ids()]
    ledger = ray.get_actor(ledger_name)
    devices: list[str] = ray.get(ledger.claim.remote(trial_id, os.getpid(), ray_ids))
    _claimed = devices
    if devices and devices != ray_ids:
        # the ledger keeps a process on one GPU, so a reused process sets the value it had
        os.environ[CUDA_VISIBLE] = ",".join(devices)
    return devices


def release_devices(ledger_name: str, trial_id: str) -> None:
    import ray

    with contextlib.suppress(Exception):  # the run is ending; the ledger goes with it
        ray.get_actor(ledger_name).release.remote(trial_id)


def with_devices(trainable: Any, ledger_name: str) -> Any:
    """``trainable`` (a function or Trainable class) claiming its GPUs before it starts."""
    if inspect.isclass(trainable):
        return _class_with_devices(trainable, ledger_name)

    @functools.wraps(trainable)
    def trial(config: dict[str, Any]) -> Any:
        from ray import tune

        trial_id = tune.get_context().get_trial_id()
        claim_devices(ledger_name, trial_id)
        try:
            return trainable(config)
        finally:
            release_devices(ledger_name, trial_id)

    return trial


def _class_with_devices(cls: type, ledger_name: str) -> type:
    def setup(self: Any, config: dict[str, Any]) -> None:
        claim_devices(ledger_name, self.trial_id)
        cls.setup(self, config)  # type: ignore[attr-defined]

    def reset_config(self: Any, new_config: dict[str, Any]) -> bool:
        claim_devices(ledger_name, self.trial_id)
        return bool(cls.reset_config(self, new_config))  # type: ignore[attr-defined]

    def cleanup(self: Any) -> None:
        try:
            cls.cleanup(self)  # type: ignore[attr-defined]
        finally:
            release_devices(ledger_name, self.trial_id)

    body = {"setup": setup, "reset_config": reset_config, "cleanup": cleanup, "__module__": cls.__module__}
    return type(cls.__name__, (cls,), body)


# ---------------------------------------------------------------------------- in the driver


class DeviceRecorder(Callback):
    """Copies each trial's devices from the ledger into its record (``gpu_ids``)."""

    def __init__(self, book: ExperimentBook, ledger: Any) -> None:
        self.book = book
        self.ledger = ledger

    def __getstate__(self) -> dict[str, Any]:
        # Ray pickles the run config for Tuner.restore; a restored run gets a new ledger.
        return {"book": self.book, "ledger": None}

    def _fill(self, trial: Any, again: bool = False) -> None:
        record = self.book.trials.get(trial.trial_id)
        if record is None or self.ledger is None or (record.gpu_ids is not None and not again):
            return
        import ray

        try:
            found = ray.get(self.ledger.lookup.remote([trial.trial_id]), timeout=LOOKUP_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - the record is informative; the run goes on
            return
        if trial.trial_id in found:
            record.gpu_ids = ",".join(found[trial.trial_id])

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any) -> None:
        self._fill(trial)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._fill(trial, again=True)  # a retry may have run elsewhere

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._fill(trial, again=True)


class DeviceSetup:
    """A run's GPU arrangements: the ledger, the trainable wrapper and the recorder.

    Nothing is started for runs without GPU trials.
    """

    def __init__(self, ledger: Any = None, ledger_name: str | None = None) -> None:
        self.ledger = ledger
        self.ledger_name = ledger_name

    @classmethod
    def start(cls, gpu: float, gpu_ids: Sequence[str], spread: bool) -> DeviceSetup:
        """For trials asking ``gpu`` GPUs each; ``gpu_ids`` are the local GPUs when spreading."""
        if gpu <= 0:
            return cls()
        handle, name = start_ledger(gpu_ids if spread else [], spread and 0 < gpu < 1)
        return cls(handle, name)

    def wrap(self, trainable: Any) -> Any:
        return trainable if self.ledger_name is None else with_devices(trainable, self.ledger_name)

    def callbacks(self, book: ExperimentBook) -> list[Any]:
        return [] if self.ledger is None else [DeviceRecorder(book, self.ledger)]

    def close(self) -> None:
        if self.ledger is None:
            return
        import ray

        with contextlib.suppress(Exception):  # Ray may be shutting down already
            ray.kill(self.ledger)
        self.ledger = None
