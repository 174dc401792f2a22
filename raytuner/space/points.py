"""Points to evaluate: user-given configurations, full or partial, checked against the space.

A partial point fixes some parameters; the rest are drawn from the space when the point is
used. Inside a conditional choice the point's mapping picks the branch whose constants it
matches (``{name: sgd}`` picks the ``sgd`` branch) and the branch's other parameters are
drawn as usual.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from raytuner.space.hyperopt import match_option
from raytuner.space.model import Choice, Constant, Float, Integer, Nested, Node, Normal, Path, Space, render_path
from raytuner.space.sample import sample


class PointError(ValueError):
    """A point the space cannot produce; ``path`` is where inside the point."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path


def complete_point(space: Space, point: Mapping[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """The full configuration for ``point``: its values, and draws for everything it leaves out.

    Raises:
        PointError: the point names a key the space lacks, or a value it cannot produce.
    """
    result = _complete(space.root, point, (), rng)
    return dict(result)


def _complete(node: Node, value: Any, path: Path, rng: np.random.Generator) -> Any:
    if isinstance(node, Nested):
        if not isinstance(value, Mapping):
            raise PointError(path, f"expected a mapping, found {value!r}")
        keys = {key for key, _ in node}
        unknown = sorted(str(k) for k in value if k not in keys)
        if unknown:
            raise PointError((*path, unknown[0]), f"'{unknown[0]}' is not a parameter of the space")
        return {
            key: _complete(child, value[key], (*path, key), rng) if key in value else sample(child, rng)
            for key, child in node
        }
    if isinstance(node, Choice):
        index = match_option(node, value)
        if index is None:
            index = _partial_branch(node, value)
        if index is None:
            raise PointError(path, f"{value!r} is not one of the options")
        return _complete(node.options[index], value, path, rng)
    if isinstance(node, Constant):
        if value != node.value:
            raise PointError(path, f"the space fixes this to {node.value!r}, found {value!r}")
        return value
    return _number(node, value, path)


def _partial_branch(node: Choice, value: Any) -> int | None:
    if not isinstance(value, Mapping):
        return None
    for i, option in enumerate(node.options):
        if not isinstance(option, Nested):
            continue
        children = dict(option.items)
        if all(k in children and _fits(children[k], v) for k, v in value.items()):
            return i
    return None


def _fits(node: Node, value: Any) -> bool:
    """A given value can sit at ``node`` unless the node is a constant with another value."""
    return not isinstance(node, Constant) or node.value == value


def _number(node: Float | Integer | Normal, value: Any, path: Path) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PointError(path, f"expected a number, found {value!r}")
    if isinstance(node, Integer):
        if not isinstance(value, int) and not float(value).is_integer():
            raise PointError(path, f"expected an integer, found {value!r}")
        if not node.low <= value <= node.max_value:
            raise PointError(path, f"expected an integer in [{node.low}, {node.max_value}], found {value!r}")
        return int(value)
    if isinstance(node, Float) and not node.low <= value <= node.high:
        raise PointError(path, f"expected a number in [{node.low:g}, {node.high:g}], found {value!r}")
    try:
        result = float(value)
    except OverflowError:  # an int past the float range
        result = math.inf
    if not math.isfinite(result):  # a Normal is unbounded, but only finite numbers are values
        raise PointError(path, f"expected a finite number, found {value!r}")
    return result


def describe(path: Path) -> str:
    return render_path(path) or "the point"
