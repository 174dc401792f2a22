"""Checks against the live Ray cluster before any trial is started."""

from __future__ import annotations

from typing import Any

from raytuner.errors import Location, SpecError


def trial_resources(cpu: float, gpu: float, custom: dict[str, float]) -> dict[str, float]:
    """The resource request of one trial, in Ray's names."""
    wanted = {"CPU": cpu, "GPU": gpu, **custom}
    return {name: amount for name, amount in wanted.items() if amount}


def check_placeable(wanted: dict[str, float], nodes: list[dict[str, Any]], source: str) -> None:
    """Refuse a per-trial request that no node of the cluster can ever satisfy.

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
            raise SpecError(
                f"each trial asks for {amount:g} {name}, but no node of the Ray cluster has more than {most:g}",
                Location(source, None, f"resources.{key}"),
            )
    raise SpecError(
        f"no single node of the Ray cluster has all of {wanted} at once", Location(source, None, "resources")
    )
