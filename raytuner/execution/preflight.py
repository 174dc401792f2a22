"""Checks against the live Ray cluster before any trial is started, and the pre-flight report."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from raytuner.errors import Location, SpecError
from raytuner.execution.gpus import GpuInventory, Placement, detect_gpus, plan_placement

NO_GPU_HINT = "no GPU was detected here; `raytuner run --gpus N` gives the local Ray N (logical) GPUs"


def trial_resources(cpu: float, gpu: float, custom: dict[str, float]) -> dict[str, float]:
    """The resource request of one trial, in Ray's names."""
    wanted = {"CPU": cpu, "GPU": gpu, **custom}
    return {name: amount for name, amount in wanted.items() if amount}


# Where Ray's cluster launcher (`ray up`) leaves the cluster's config on the head node; the
# autoscaler it starts there reads it (Ray Tune also takes it as the sign of a launched cluster).
BOOTSTRAP_CONFIG = "~/ray_bootstrap_config.yaml"


@dataclass(frozen=True)
class NodeType:
    """A kind of node the cluster's autoscaler can start: its resources and how many at most."""

    name: str
    resources: Mapping[str, float]
    max_workers: int | None  # None: no limit

    def holds(self, wanted: Mapping[str, float]) -> bool:
        return all(float(self.resources.get(name, 0)) >= amount for name, amount in wanted.items())


def node_types_of(config: Mapping[str, Any]) -> list[NodeType]:
    """The worker node types of a cluster-launcher config (``available_node_types``).

    The head's own type is left out (the head runs already, it is a live node), and so is a
    type with ``max_workers: 0`` or one without declared ``resources`` (nothing to check).
    """
    types = config.get("available_node_types") or {}
    if not isinstance(types, Mapping) or config.get("max_workers") == 0:
        return []
    found = []
    for name, body in types.items():
        if name == config.get("head_node_type") or not isinstance(body, Mapping):
            continue
        resources, most = body.get("resources"), body.get("max_workers", config.get("max_workers"))
        if not isinstance(resources, Mapping) or most == 0:
            continue
        found.append(NodeType(str(name), {k: float(v) for k, v in resources.items()}, most))
    return found


def autoscaler_node_types() -> list[NodeType] | None:
    """The node types the autoscaler of the Ray this process joined can start; None when
    none is known (no autoscaler, or one whose types cannot be read from here).

    Ray's own record comes first: the cluster config in the GCS that an autoscaler reports
    (Ray Data reads it the same way). Else the cluster launcher's config on the head
    (:data:`BOOTSTRAP_CONFIG`), which is where a job's driver, ``raytuner submit``'s included, runs.
    """
    found = _gcs_node_types()
    if found is not None:
        return found
    path = os.path.expanduser(BOOTSTRAP_CONFIG)
    if not os.path.isfile(path):
        return None
    import yaml

    try:
        with open(path) as stream:
            config = yaml.safe_load(stream)
    except (OSError, yaml.YAMLError):
        return None
    return node_types_of(config) if isinstance(config, Mapping) else None


def _gcs_node_types() -> list[NodeType] | None:
    try:
        import ray._private.state

        config = ray._private.state.state.get_cluster_config()
    except Exception:  # noqa: BLE001 - not connected, or an older GCS without the record: none known
        return None
    if config is None or not config.node_group_configs:
        return None
    return [
        NodeType(group.name, _in_order(group.resources), None if group.max_count < 0 else group.max_count)
        for group in config.node_group_configs
        if group.resources and group.max_count != 0
    ]


def _in_order(resources: Mapping[str, float]) -> dict[str, float]:
    """CPU, GPU, then the rest by name: a protobuf map comes in no fixed order, and messages show it."""
    rank = {"CPU": 0, "GPU": 1}
    return {name: float(resources[name]) for name in sorted(resources, key=lambda name: (rank.get(name, 2), name))}


def fits_a_node(wanted: Mapping[str, float], resources: Sequence[Mapping[str, float]]) -> bool:
    """Whether one of the nodes with these ``resources`` has all of ``wanted``."""
    return any(all(float(res.get(name, 0)) >= amount for name, amount in wanted.items()) for res in resources)


def live_node_holds(wanted: Mapping[str, float], nodes: Sequence[Mapping[str, Any]]) -> bool:
    """Whether one live node of ``nodes`` (``ray.nodes()``) has all of ``wanted``."""
    return fits_a_node(wanted, [node.get("Resources", {}) for node in nodes if node.get("Alive", True)])


def show_resources(resources: Mapping[str, float]) -> str:
    """``1 CPU, 0.25 GPU``: a request or a node's resources in messages."""
    return ", ".join(f"{amount:g} {name}" for name, amount in resources.items()) or "nothing"


def check_placeable(
    wanted: dict[str, float],
    nodes: list[dict[str, Any]],
    source: str,
    *,
    local: bool = False,
    node_types: Callable[[], Sequence[NodeType] | None] = autoscaler_node_types,
) -> NodeType | None:
    """Refuse a per-trial request that no node of the cluster can ever satisfy.

    A request no live node holds is still accepted on a cluster whose autoscaler can start
    a node type that holds it (a fresh cluster launched from ``cluster/aws.yaml`` has no
    worker yet); without an autoscaler only the live nodes count.

    Args:
        wanted: one trial's request, in Ray's names.
        nodes: ``ray.nodes()``.
        source: the spec, for the error's location.
        local: the Ray is this run's own: no autoscaler, and ``--gpus`` is the way to give it GPUs.
        node_types: the autoscaler's node types (asked only when no live node holds the request).

    Returns:
        The node type the autoscaler would start for the request, or None when a live node holds it.

    Raises:
        SpecError: naming the resource, what one trial asks and the most any node (or node type) has.
    """
    alive = [node.get("Resources", {}) for node in nodes if node.get("Alive", True)]
    if fits_a_node(wanted, alive):
        return None
    types = [] if local else list(node_types() or [])
    for kind in types:
        if kind.holds(wanted):
            return kind
    for name, amount in wanted.items():
        most = max((res.get(name, 0) for res in alive), default=0)
        if most < amount and all(float(kind.resources.get(name, 0)) < amount for kind in types):
            key = {"CPU": "cpu", "GPU": "gpu"}.get(name, f"custom.{name}")
            hint = f" ({NO_GPU_HINT})" if local and name == "GPU" and most == 0 else ""
            if types:
                most_type = max(float(kind.resources.get(name, 0)) for kind in types)
                shown = ", ".join(kind.name for kind in types)
                hint = f", nor any node type its autoscaler can start ({shown}) more than {most_type:g}"
            raise SpecError(
                f"each trial asks for {amount:g} {name}, but no node of the Ray cluster has more than {most:g}{hint}",
                Location(source, None, f"resources.{key}"),
            )
    raise SpecError(
        f"no single node of the Ray cluster{' or node type of its autoscaler' if types else ''} has all of "
        f"{wanted} at once",
        Location(source, None, "resources"),
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
