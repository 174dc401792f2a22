"""Where a built-in workload's refit trains: a Ray task with a trial's resources, or this process.

On the Ray backend the refit is one Ray task, placed like a trial: the spec's
``resources`` (CPUs, GPUs, custom) in Ray's names (:func:`~raytuner.execution.preflight.trial_resources`),
the same placement checks, on the Ray :func:`~raytuner.execution.session.ray_session` starts
or joins (``--address``), with the spec's folder on the workers' import path. It is a task,
not a one-trial Tune run: a refit has no searcher, scheduler, stopper or trials to rank, and
its product is a model, which comes back to the driver in the task's last item, so the
driver writes ``refit/`` where the experiment lives (a folder or a bucket) and no worker
needs to reach it. The task is a generator: each epoch's metrics stream back as they come,
which is the progress. ``--inline`` (or an inline experiment) runs the same generator here.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raytuner.errors import ExperimentError, RaytunerError
from raytuner.spec.models import Backend
from raytuner.spec.torch_options import TorchTrainable

if TYPE_CHECKING:
    from raytuner.workloads.torch.refit import RefitOutcome

EpochHook = Callable[[Mapping[str, float]], None]


@dataclass(frozen=True)
class RefitJob:
    """What the refit trains: the workload, the configuration, the epochs, the trial's resources."""

    options: TorchTrainable
    config: dict[str, Any]
    epochs: int
    base_dir: str
    cpu: float
    gpu: float
    custom: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RefitProduct:
    """The trained model and where it was trained.

    Attributes:
        outcome: the model's description and its curve.
        files: the model's files (``model.json``, ``model.pt``) by name.
        where: the backend, node, process, device and resources it ran with.
    """

    outcome: RefitOutcome
    files: dict[str, bytes]
    where: dict[str, Any]


def train_refit(job: RefitJob, backend: Backend) -> Iterator[dict[str, float] | RefitProduct]:
    """Train the final model of ``job``: each epoch's metrics as it ends, then the :class:`RefitProduct`."""
    import torch

    from raytuner.workloads.torch.refit import refit_epochs
    from raytuner.workloads.torch.trainable import device_scope, trial_device

    device = trial_device(job.gpu)
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, int(job.cpu)))  # as many as a trial had
    try:
        # as a trial: its GPU memory given back after, running out of it said in words
        with device_scope(device), tempfile.TemporaryDirectory(prefix="raytuner-refit-") as folder:
            outcome = yield from refit_epochs(
                job.options, job.config, job.epochs, Path(folder), base_dir=job.base_dir, device=device
            )
            files = {path.name: path.read_bytes() for path in Path(folder).iterdir() if path.is_file()}
    finally:
        torch.set_num_threads(threads)
    yield RefitProduct(outcome, files, _where(backend, device, job))


def _where(backend: Backend, device: Any, job: RefitJob) -> dict[str, Any]:
    """The backend, node, process, device and resources of this refit."""
    resources: dict[str, float] = {"CPU": job.cpu}
    if backend is Backend.RAY:
        import ray

        resources = {name: float(amount) for name, amount in ray.get_runtime_context().get_assigned_resources().items()}
    node = socket.gethostname()
    return {"backend": backend.value, "node": node, "pid": os.getpid(), "device": str(device), "resources": resources}


def run_refit(
    job: RefitJob, *, on_ray: bool, address: str | None, source: str, on_epoch: EpochHook | None = None
) -> RefitProduct:
    """Train ``job`` as a Ray task (``on_ray``) or in this process; ``on_epoch`` hears each epoch.

    Raises:
        SpecError: the trial's resources fit no node of the cluster.
        ExperimentError: the task failed for a reason of Ray's (a worker died...).
        RaytunerError: as the training raises it (a dataset that does not load...).
    """
    product: RefitProduct | None = None
    for item in _on_ray(job, address, source) if on_ray else train_refit(job, Backend.INLINE):
        if isinstance(item, RefitProduct):
            product = item
        elif on_epoch is not None:
            on_epoch(item)
    if product is None:
        raise ExperimentError("the refit ended without its model")
    return product


def _on_ray(job: RefitJob, address: str | None, source: str) -> Iterator[dict[str, float] | RefitProduct]:
    """:func:`train_refit` as one Ray task with the trial's resources, its items as they come."""
    from raytuner.execution.preflight import check_before_start, check_placeable, trial_resources
    from raytuner.execution.session import RayKind, ray_kind, ray_session
    from raytuner.workloads.function import search_path

    wanted = trial_resources(job.cpu, job.gpu, job.custom)
    if ray_kind(address) is RayKind.PRIVATE:
        check_before_start(wanted, None, None, source)
    with ray_session(address, verbose=False, python_path=search_path(Path(job.base_dir))) as session:
        import ray
        from ray.exceptions import RayTaskError

        check_placeable(wanted, ray.nodes(), source, local=session.private)
        task = ray.remote(train_refit).options(
            num_cpus=job.cpu, num_gpus=job.gpu, resources=job.custom or None, num_returns="streaming", max_retries=0
        )
        try:
            for ref in task.remote(job, Backend.RAY):  # type: ignore[attr-defined]  # a streaming generator
                yield ray.get(ref)
        except RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, RaytunerError):
                raise cause from None
            raise ExperimentError(f"the refit task failed on Ray: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__
