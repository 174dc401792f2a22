"""Space nodes as Ray Tune domains, where Ray itself must sample (PBT's mutations)."""

from __future__ import annotations

from typing import Any, cast

from raytuner.space.model import Choice, Constant, Float, Integer, Nested, Node, Op


def to_ray(node: Node) -> Any:
    """The Ray Tune form of ``node``: a Domain, a list of values (choice), or a nested dict.

    Raises:
        ValueError: a choice with mapping options (conditional), which Ray cannot mutate.
    """
    from ray import tune

    if isinstance(node, Constant):
        return [node.value]
    if isinstance(node, Nested):
        return {key: to_ray(child) for key, child in node}
    if isinstance(node, Choice):
        if node.conditional:
            raise ValueError("a choice of mappings (conditional branches) cannot be mutated")
        return [option.value for option in node.options if isinstance(option, Constant)]
    if isinstance(node, Float):
        factories = {
            Op.UNIFORM: lambda: tune.uniform(node.low, node.high),
            Op.LOGUNIFORM: lambda: tune.loguniform(node.low, node.high),
            Op.QUNIFORM: lambda: tune.quniform(node.low, node.high, cast(float, node.q)),
            Op.QLOGUNIFORM: lambda: tune.qloguniform(node.low, node.high, cast(float, node.q)),
        }
        return factories[node.op]()
    if isinstance(node, Integer):
        if node.op is Op.QRANDINT:
            return tune.qrandint(node.low, node.high, cast(int, node.q))
        return (tune.lograndint if node.log else tune.randint)(node.low, node.high)
    if node.q is not None:
        return tune.qrandn(node.mean, node.sd, node.q)
    return tune.randn(node.mean, node.sd)
