"""Checks against the live Ray cluster before any trial is started, and the pre-flight report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from raytuner.errors import Location, SpecError
from raytuner.execution.gpus import GpuInventory, Placement, detect_gpus, plan_placement

NO_GPU_HINT = "no GPU was detected here; `raytuner run --gpus N` gives the local Ray N (logical) GPUs"


def trial_resources(cpu: float, gpu: float, custom: dict[str, float]) -> dict[str, float]:
    """The resource request of one trial, in Ray's names."""
    wanted = {"CPU": cpu, "GPU": gpu, **custom}
    return {name: amount for name, amount in wanted.items() if amount}


def check_placeable(wanted: dict[str, float], nodes: list[dict[str, Any]], source: str, *, local: bool = False) -> None:
    """Refuse a per-trial request that no node of the cluster can ever satisfy.

    ``local``: the Ray is this run's own, so ``--gpus`` is the way to give it GPUs.

    Raises:
        SpecError: naming the resource, what one trial asks and the most any node has.
    """
    alive = [node.get("Resources", {}) for node in nodes if node.get("Alive", True)]
    if any(all(res.get(name, 0) >= amount for name, amount in wanted.items()) for res in alive):
        return
    for name, amount in wanted.items():
        most = max((res.get(name, 0) for res in alive), default=0)
        if most < amount:
            key = {"CPU": "cpu", "GPU": "gpu"}.get(name, f"custom.{name}")
            hint = f" ({NO_GPU_HINT})" if local and name == "GPU" and most == 0 else ""
            raise SpecError(
                f"each trial asks for {amount:g} {name}, but no node of the Ray cluster has more than {most:g}{hint}",
                Location(source, None, f"resources.{key}"),
            )
    raise SpecError(
        f"no single node of the Ray cluster has all of {wanted} at once", Location(source, None, "resources")
    )


def check_before_start(wanted: dict[str, float], num_cpus: int | None, num_gpus: int | None, source: str) -> None:
    """:func:`check_placeable` against the private Ray about to start, before it starts: a
    request it can never meet is refused at once instead of after Ray's start-up. Only the sizes
    given (``--cpus``, ``--gpus``) are known here; custom resources a private Ray never has.

    Raises:
        SpecError: as :func:`check_placeable`.
    """
    known: dict[str, float] = {"CPU": float("inf") if num_cpus is None else num_cpus}
    known["GPU"] = float("inf") if num_gpus is None else num_gpus
    check_placeable(wanted, [{"Resources": known, "Alive": True}], source, local=True)


def local_single_node(nodes: Sequence[Mapping[str, Any]], joined: bool) -> bool:
    """Whether every trial runs on this machine: a Ray this run did not join by address,
    with one node. Fractional GPUs are spread by raytuner only then."""
    return not joined and sum(1 for node in nodes if node.get("Alive", True)) == 1


def preflight(
    wanted: Mapping[str, float],
    nodes: Sequence[Mapping[str, Any]],
    *,
    max_concurrent: int | None,
    total_trials: int,
    spread: bool,
    requested_gpus: int | None,
    inventory: GpuInventory | None = None,
) -> Placement:
    """The pre-flight report: GPUs present, each trial's request, trials at once and per GPU."""
    if inventory is None:
        inventory = detect_gpus(use_torch=wanted.get("GPU", 0) > 0)
    return plan_placement(
        wanted,
        nodes,
        inventory=inventory,
        max_concurrent=max_concurrent,
        total_trials=total_trials,
        spread=spread,
        requested_gpus=requested_gpus,
    )
