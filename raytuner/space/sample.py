"""Drawing configurations from a space: random samples and grid expansion.

Random and grid search both go through :func:`expand`: the space becomes a list of
*variants*, one per grid point, and each variant draws the rest of the space at random.
``random`` enumerates only ``grid`` nodes (as Ray Tune does); ``grid`` enumerates every
``choice`` too, including each branch of a conditional choice. Numbers are drawn exactly
as Ray Tune draws them (``tune.uniform``, ``tune.qrandint``...), so a space means the same
thing here as it does there.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from raytuner.space.model import Choice, Constant, Float, Integer, Nested, Node, Normal, Space

Variant = Callable[[np.random.Generator], Any]


def sample(node: Node, rng: np.random.Generator) -> Any:
    """One random value of ``node`` (a whole configuration when ``node`` is a space's root)."""
    if isinstance(node, Constant):
        return copy.deepcopy(node.value)
    if isinstance(node, Nested):
        return {key: sample(child, rng) for key, child in node}
    if isinstance(node, Choice):
        return sample(node.options[int(rng.integers(len(node.options)))], rng)
    if isinstance(node, Float):
        return _sample_float(node, rng)
    if isinstance(node, Integer):
        return _sample_integer(node, rng)
    return _sample_normal(node, rng)


def _sample_float(node: Float, rng: np.random.Generator) -> float:
    if node.log:
        value = math.exp(rng.uniform(math.log(node.low), math.log(node.high)))
    else:
        value = float(rng.uniform(node.low, node.high))
    if node.q is not None:
        value = _quantize(value, node.q)
        value = min(max(value, node.low), node.high)
    return float(value)


def _sample_integer(node: Integer, rng: np.random.Generator) -> int:
    if node.log:
        value = int(math.exp(rng.uniform(math.log(node.low), math.log(node.high))))
    elif node.q is not None:
        value = int(rng.integers(node.low, node.high + 1))
        value = round(value / node.q) * node.q
    else:
        value = int(rng.integers(node.low, node.high))
    return min(max(value, node.low), node.max_value)


def _sample_normal(node: Normal, rng: np.random.Generator) -> float:
    value = float(rng.normal(node.mean, node.sd))
    if node.q is not None:
        value = _quantize(value, node.q)
    return value


def _quantize(value: float, q: float) -> float:
    steps = value / q
    # a q tiny next to the value (1e-300 against 1e10) makes steps infinite: nothing to round
    return float(round(steps) * q) if math.isfinite(steps) else value


def expand(node: Node, enumerate_choices: bool) -> list[Variant]:
    """The grid variants of ``node``; each variant draws whatever is not enumerated.

    Args:
        node: a space node (usually a space's root).
        enumerate_choices: enumerate ``choice`` nodes like ``grid`` nodes (grid search).
    """
    if isinstance(node, Nested):
        keys = [key for key, _ in node]
        per_key = [expand(child, enumerate_choices) for _, child in node]
        return [_nested_variant(keys, combo) for combo in itertools.product(*per_key)]
    if isinstance(node, Choice) and (node.grid or enumerate_choices):
        return [variant for option in node.options for variant in expand(option, enumerate_choices)]
    return [_sampled(node)]


def _sampled(node: Node) -> Variant:
    def draw(rng: np.random.Generator) -> Any:
        return sample(node, rng)

    return draw


def _nested_variant(keys: list[str], parts: tuple[Variant, ...]) -> Variant:
    def draw(rng: np.random.Generator) -> dict[str, Any]:
        return {key: part(rng) for key, part in zip(keys, parts, strict=True)}

    return draw


def grid_size(space: Space, enumerate_choices: bool) -> int:
    """How many grid points ``space`` has (1 for a space without grid nodes)."""
    return _count(space.root, enumerate_choices)


def _count(node: Node, enumerate_choices: bool) -> int:
    if isinstance(node, Nested):
        return math.prod(_count(child, enumerate_choices) for _, child in node)
    if isinstance(node, Choice) and (node.grid or enumerate_choices):
        return sum(_count(option, enumerate_choices) for option in node.options)
    return 1
