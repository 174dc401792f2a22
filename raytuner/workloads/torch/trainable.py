"""The Ray Tune function trainable around :class:`~raytuner.workloads.torch.training.TrainingRun`.

:func:`make_trainable` returns a plain function of ``config`` that closes over plain data
(the options as JSON-ready dicts, a folder, an integer), so cloudpickle ships it to any
worker; torch and Ray are imported inside the trial only.
"""

from __future__ import annotations

import gc
import tempfile
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raytuner.spec.torch_options import OPTIONS_BY_BUILTIN, TorchTrainable

if TYPE_CHECKING:
    import torch

    from raytuner.workloads.torch.training import TrainingRun

STATE_FILE = "state.pt"


def make_trainable(
    options: TorchTrainable, checkpoint_every: int, *, base_dir: str | Path | None = None
) -> Callable[[dict[str, Any]], None]:
    """Build the Ray Tune function trainable of a built-in torch workload.

    Each epoch is one ``tune.report`` (train_loss, val_loss, train/val_accuracy or
    val_rmse/val_mae, epoch, lr). A trial stops reporting at ``max_epochs``, on early
    stopping, when a plateau schedule's lr falls below its floor, or when the loss diverges.

    Args:
        options: The workload's options from the spec.
        checkpoint_every: Save a checkpoint every N epochs and at the last one (0: never).
        base_dir: Folder that relative paths in the options are relative to (the spec's
            folder); resolved now, because Ray runs each trial in its own folder.

    Returns:
        ``train(config)``, picklable; restores from ``tune.get_checkpoint()`` when Ray
        hands one (resume, retry, PBT exploit), with the new config's hyperparameters.
    """
    if checkpoint_every < 0:
        raise ValueError(f"checkpoint_every must be >= 0, found {checkpoint_every}")
    options_data = options.model_dump(mode="json")
    folder = str(Path(base_dir if base_dir is not None else Path.cwd()).resolve())

    def train(config: dict[str, Any]) -> None:
        run_trial(options_data, config, checkpoint_every=checkpoint_every, base_dir=folder)

    train.__name__ = train.__qualname__ = options.builtin
    return train


def run_trial(
    options_data: Mapping[str, Any], config: Mapping[str, Any], *, checkpoint_every: int, base_dir: str
) -> None:
    """The body of one trial (inside a Ray worker)."""
    import torch

    options = OPTIONS_BY_BUILTIN[str(options_data["builtin"])].model_validate(options_data)
    cpus, gpus = _assigned_resources()
    # the trial's CPUs and no more: CPU-only trials beside GPU trials do not oversubscribe cores
    torch.set_num_threads(max(1, int(cpus)))
    device = trial_device(gpus)
    with device_scope(device):
        _train(options, config, device, checkpoint_every=checkpoint_every, base_dir=base_dir)


def _train(
    options: TorchTrainable, config: Mapping[str, Any], device: torch.device, *, checkpoint_every: int, base_dir: str
) -> None:
    from ray import tune

    from raytuner.workloads.torch.training import TrainingRun

    run = TrainingRun(options, config, device=device, base_dir=base_dir)
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            run.load_state_dict(load_state(Path(folder), device))
    while not run.finished:
        metrics = run.step()
        due = checkpoint_every > 0 and (run.epoch % checkpoint_every == 0 or run.finished)
        if not due:
            tune.report(metrics)
            continue
        with tempfile.TemporaryDirectory() as folder:
            save_state(run, Path(folder))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def trial_device(gpus: float) -> torch.device:
    """``cuda`` (the first of the GPUs this process may see: the trial's own) when the trial
    has a GPU and CUDA works, else the CPU."""
    import torch

    return torch.device("cuda" if gpus > 0 and torch.cuda.is_available() else "cpu")


@contextmanager
def device_scope(device: torch.device) -> Iterator[None]:
    """Give the trial's GPU memory back when it ends, so the next trial of a reused actor
    (or another process sharing the GPU) can have it; an out-of-memory error is raised as
    :class:`GpuOutOfMemoryError`. Does nothing on the CPU."""
    import torch

    if device.type != "cuda":
        yield
        return
    try:
        yield
    except torch.cuda.OutOfMemoryError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "CUDA out of memory"
        traceback.clear_frames(exc.__traceback__)  # the finished frames' tensors, freed below
        raise GpuOutOfMemoryError(f"out of GPU memory: {first}") from None
    finally:
        gc.collect()  # tensors held by the finished run's objects
        torch.cuda.empty_cache()


class GpuOutOfMemoryError(RuntimeError):
    """A trial ran out of GPU memory (from torch.cuda.OutOfMemoryError, whose frames are
    cleared so the trial's tensors can be freed)."""


def save_state(run: TrainingRun, folder: Path) -> Path:
    """Write a run's state to ``folder/state.pt`` (a checkpoint folder); returns the file."""
    import torch

    path = folder / STATE_FILE
    torch.save(run.state_dict(), path)
    return path


def load_state(folder: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Read what :func:`save_state` wrote, tensors moved to ``device``."""
    import torch

    state: dict[str, Any] = torch.load(folder / STATE_FILE, map_location=device, weights_only=True)
    return state


def _assigned_resources() -> tuple[float, float]:
    """CPUs and GPUs Ray gave this trial; (1, 0) outside a Ray worker."""
    try:
        import ray

        if not ray.is_initialized():  # an inline trial: asking would start a Ray
            return 1.0, 0.0
        assigned = ray.get_runtime_context().get_assigned_resources()
    except Exception:  # not in a Ray worker (a direct call, a test)
        return 1.0, 0.0
    return float(assigned.get("CPU", 1.0)), float(assigned.get("GPU", 0.0))
