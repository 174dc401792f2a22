"""The one translation of a space to Optuna: a define-by-run walk of the parsed tree.

Each node is suggested on an Optuna trial under its path in the space (``optimizer/0/lr``,
as for HyperOpt), so names never collide and a conditional branch's parameters are
suggested only when the branch is chosen: define-by-run expresses conditional spaces with
no flattening. Every ``choice`` is a categorical over option *indices* (options may be
lists, mappings or ``None``, which Optuna's categoricals cannot hold). Optuna has no
quantized log scale and no unbounded normal, so

- ``q`` nodes are suggested on their continuous range and rounded afterwards, exactly as
  :mod:`raytuner.space.sample` rounds (Optuna's ``step`` counts from ``low``, Ray's ``q``
  from zero);
- ``normal`` nodes are suggested as a quantile in (0, 1) and mapped through the normal's
  inverse CDF, so the prior stays the normal and Optuna still sees a bounded parameter.

:func:`to_params` maps a configuration (a point to evaluate, or an earlier result) back to
these parameters, so Optuna can be told about it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from statistics import NormalDist
from typing import Any, Protocol

from raytuner.space.hyperopt import label
from raytuner.space.model import Choice, Constant, Float, Integer, Nested, Node, Normal, Path, Space, walk

# A normal's quantile stays inside (EPS, 1 - EPS): at most ~5.3 sd from the mean, never infinite.
EPS = 1e-7


class Suggester(Protocol):
    """The part of ``optuna.trial.Trial`` the translation uses."""

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...

    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int: ...

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


def suggest(space: Space, trial: Suggester) -> dict[str, Any]:
    """One configuration of ``space``, every value suggested on ``trial``."""
    return dict(_suggest(space.root, (), trial))


def _suggest(node: Node, path: Path, trial: Suggester) -> Any:
    name = label(path)
    if isinstance(node, Constant):
        return copy.deepcopy(node.value)
    if isinstance(node, Nested):
        return {key: _suggest(child, (*path, key), trial) for key, child in node}
    if isinstance(node, Choice):
        index = int(trial.suggest_categorical(name, list(range(len(node.options)))))
        return _suggest(node.options[index], (*path, index), trial)
    if isinstance(node, Float):
        value = trial.suggest_float(name, node.low, node.high, log=node.log)
        if node.q is not None:
            value = min(max(_quantize(value, node.q), node.low), node.high)
        return float(value)
    if isinstance(node, Integer):
        number = trial.suggest_int(name, node.low, node.max_value, log=node.log)
        if node.q is not None:
            number = round(number / node.q) * node.q
        return int(min(max(number, node.low), node.max_value))
    u = trial.suggest_float(name, EPS, 1 - EPS)
    value = NormalDist(node.mean, node.sd).inv_cdf(u)
    return _quantize(value, node.q) if node.q is not None else float(value)


def _quantize(value: float, q: float) -> float:
    steps = value / q
    return float(round(steps) * q) if math.isfinite(steps) else value


def to_params(space: Space, config: Mapping[str, Any]) -> dict[str, Any]:
    """Optuna's parameters (choice indices, active nodes only) for a configuration of ``space``.

    Raises:
        ValueError: naming the key whose value the space cannot produce.
    """
    from raytuner.space.assign import assign

    return assign(space, config, _encode)


def _encode(node: Node, value: Any, where: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}: expected a number, found {value!r}")
    if isinstance(node, Float):
        return min(max(float(value), node.low), node.high)
    if isinstance(node, Integer):
        return int(min(max(round(value), node.low), node.max_value))
    assert isinstance(node, Normal)
    u = NormalDist(node.mean, node.sd).cdf(float(value))
    return min(max(u, EPS), 1 - EPS)


def conditional_paths(space: Space) -> list[Path]:
    """Paths of the choices whose options are mappings (conditional branches)."""
    return [path for path, node in walk(space.root) if isinstance(node, Choice) and node.conditional]


def numeric_paths(space: Space) -> list[Path]:
    """Paths of the numeric distributions (what CMA-ES and GPs model as coordinates)."""
    return [path for path, node in walk(space.root) if isinstance(node, (Float, Integer, Normal))]


def choice_paths(space: Space) -> list[Path]:
    return [path for path, node in walk(space.root) if isinstance(node, Choice)]
