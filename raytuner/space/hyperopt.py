"""The one translation of a space to HyperOpt, and of configurations back to HyperOpt's values.

Each node becomes an ``hp`` expression labelled by its path in the space (``optimizer/0/lr``
for ``lr`` inside the first branch of ``optimizer``), so labels never collide, however deep
the nesting, and conditional branches are ordinary ``hp.choice`` options: the cases that
break Ray Tune's own converter (nested choices of dicts, points_to_evaluate inside
branches) are plain recursion here. ``grid`` nodes become ``hp.choice`` (TPE models them as
categories rather than enumerating them); :func:`notes` says so.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

from raytuner.space.model import (
    Choice,
    Constant,
    Float,
    Integer,
    Nested,
    Node,
    Normal,
    Path,
    Space,
    render_path,
    walk,
)


def label(path: Path) -> str:
    return "/".join(str(part) for part in path)


def to_hyperopt(space: Space) -> Any:
    """The HyperOpt search space (``hp`` expressions in nested dicts) for ``space``."""
    return _translate(space.root, ())


def _translate(node: Node, path: Path) -> Any:
    from hyperopt import hp

    name = label(path)
    if isinstance(node, Constant):
        return _literal(node.value)
    if isinstance(node, Nested):
        return {key: _translate(child, (*path, key)) for key, child in node}
    if isinstance(node, Choice):
        return hp.choice(name, [_translate(option, (*path, i)) for i, option in enumerate(node.options)])
    if isinstance(node, Float):
        if node.q is None:
            low, high = (math.log(node.low), math.log(node.high)) if node.log else (node.low, node.high)
            return (hp.loguniform if node.log else hp.uniform)(name, low, high)
        if node.log:
            return hp.qloguniform(name, math.log(node.low), math.log(node.high), node.q)
        return hp.quniform(name, node.low, node.high, node.q)
    if isinstance(node, Integer):
        if node.log:
            return hp.qloguniform(name, math.log(node.low), math.log(node.high), 1)
        if node.q is not None:
            return hp.quniform(name, node.low, node.high, node.q)
        return hp.randint(name, node.low, node.high)
    if node.q is not None:
        return hp.qnormal(name, node.mean, node.sd, node.q)
    return hp.normal(name, node.mean, node.sd)


def _literal(value: Any) -> Any:
    # HyperOpt walks lists and dicts looking for expressions: a Literal keeps a constant opaque.
    from hyperopt.pyll.base import Literal

    return Literal(value) if isinstance(value, (list, dict, tuple)) else value


def normalize(node: Node, value: Any) -> Any:
    """Turn HyperOpt's output (numpy scalars, floats for integer nodes) into plain values."""
    if isinstance(node, Constant):
        return value
    if isinstance(node, Nested):
        return {key: normalize(child, value[key]) for key, child in node}
    if isinstance(node, Choice):
        return _normalize_choice(node, value)
    if isinstance(node, Integer):
        return min(max(int(round(float(value))), node.low), node.max_value)
    if isinstance(node, Float):
        result = float(value)
        return min(max(result, node.low), node.high) if node.q is not None else result
    return float(value)


def _normalize_choice(node: Choice, value: Any) -> Any:
    index = match_option(node, value)
    if index is None:  # HyperOpt returned something we did not give it: keep it as is
        return value
    return normalize(node.options[index], value)


def match_option(node: Choice, value: Any) -> int | None:
    """The index of the option of ``node`` that ``value`` can have come from, if any."""
    for i, option in enumerate(node.options):
        if _matches(option, value):
            return i
    return None


def _matches(node: Node, value: Any) -> bool:
    if isinstance(node, Constant):
        return bool(_same(node.value, value))
    if isinstance(node, Nested):
        if not isinstance(value, Mapping) or set(value) != {key for key, _ in node}:
            return False
        return all(_matches(child, value[key]) for key, child in node)
    if isinstance(node, Choice):
        return match_option(node, value) is not None
    if isinstance(node, Normal):
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if isinstance(node, Float):
        # within the bounds (HyperOpt's rounding to q and exp/log may step a little outside), so
        # branches that differ only in their ranges ({lr: [0, 1]} vs {lr: [5, 6]}) are told apart
        slack = (node.q or 0.0) + 1e-9 * max(1.0, abs(node.low), abs(node.high))
        return (
            isinstance(value, numbers.Real)
            and not isinstance(value, bool)
            and node.low - slack <= float(value) <= node.high + slack
        )
    integral = isinstance(value, numbers.Integral) and not isinstance(value, bool) or (
        isinstance(value, float) and value.is_integer()
    )
    return integral and node.low - (node.q or 1) <= value <= node.high + (node.q or 1)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    try:
        return bool(a == b) and type(a) is type(b) or (
            isinstance(a, (int, float)) and isinstance(b, (int, float)) and a == b
        )
    except Exception:  # noqa: BLE001 - exotic values simply do not match
        return False


def to_vals(space: Space, config: Mapping[str, Any]) -> dict[str, Any]:
    """HyperOpt's value assignment (choice indices, active labels only) for ``config``.

    Raises:
        ValueError: naming the key whose value the space cannot produce.
    """
    from raytuner.space.assign import assign

    def encode(node: Node, value: Any, where: str) -> Any:
        if not _matches(node, value):
            raise ValueError(f"{where}: expected a number, found {value!r}")
        return value

    return assign(space, config, encode)


def notes(space: Space) -> list[str]:
    """What HyperOpt does differently from the space's plain meaning, one line per node."""
    found = []
    for path, node in walk(space.root):
        if isinstance(node, Choice) and node.grid:
            found.append(
                f"space.{render_path(path)}: hyperopt treats grid as a categorical choice "
                "(sampled by TPE, not enumerated)"
            )
    return found


def all_labels(space: Space) -> list[str]:
    """Every HyperOpt label of ``space``, active or not (TPE needs each in a trial's misc)."""
    return [label(path) for path, node in walk(space.root) if not isinstance(node, (Constant, Nested))]
