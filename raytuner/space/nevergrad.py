"""The one translation of a space to Nevergrad: a parametrization mirroring the parsed tree.

Nevergrad's parameters nest, so the tree maps one to one and conditional spaces need no
flattening:

- a mapping becomes ``ng.p.Dict`` of its non-constant children (constants come back from the
  space itself, never through Nevergrad);
- a ``choice`` (or ``grid``) becomes ``ng.p.Choice`` over its options: a mapping option is its
  own ``ng.p.Dict`` (a conditional branch; Nevergrad keeps the other branches' coordinates but
  only the chosen one is used), any other option is a placeholder, so lists, mappings and
  ``None`` never pass through Nevergrad;
- reals are ``ng.p.Scalar`` (linear) or ``ng.p.Log`` (log scale) between their bounds;
  integers the same with integer casting (both bounds included: ``randint`` excludes its
  upper bound, so it is ``high - 1`` here);
- a ``normal`` is a quantile in (EPS, 1 - EPS) mapped through the normal's inverse CDF, as for
  Optuna, so the optimizer sees a bounded coordinate and the prior stays the normal;
- ``q`` values are rounded afterwards, exactly as :mod:`raytuner.space.sample` rounds.

:func:`to_config` reads a configuration from a candidate (walking the space and the
candidate's parameters together, so a choice is read by index), and :func:`set_config`
writes a configuration into a fresh candidate (a point to evaluate, an earlier result).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

from raytuner.space.hyperopt import match_option
from raytuner.space.model import Choice, Constant, Float, Integer, Nested, Node, Normal, Path, Space, render_path

if TYPE_CHECKING:
    import nevergrad as ng

# A normal's quantile stays inside (EPS, 1 - EPS): at most ~5.3 sd from the mean, never infinite.
EPS = 1e-7


def to_nevergrad(space: Space) -> ng.p.Dict:
    """The Nevergrad parametrization of ``space`` (an ``ng.p.Dict`` at the top)."""
    param = _param(space.root)
    assert param is not None  # the root is a mapping, always translated to a Dict
    return param


def _param(node: Node) -> Any:
    import nevergrad as ng

    if isinstance(node, Constant):
        return None
    if isinstance(node, Nested):
        return ng.p.Dict(**{key: param for key, child in node if (param := _param(child)) is not None})
    if isinstance(node, Choice):
        options = [_param(option) if isinstance(option, Nested) else i for i, option in enumerate(node.options)]
        return ng.p.Choice(options)
    if isinstance(node, Float):
        if node.log:
            return ng.p.Log(lower=node.low, upper=node.high)
        return ng.p.Scalar(lower=node.low, upper=node.high)
    if isinstance(node, Integer):
        if node.log:
            return ng.p.Log(lower=node.low, upper=node.max_value).set_integer_casting()
        return ng.p.Scalar(lower=node.low, upper=node.max_value).set_integer_casting()
    return ng.p.Scalar(lower=EPS, upper=1 - EPS)


def to_config(space: Space, candidate: ng.p.Dict) -> dict[str, Any]:
    """The configuration a candidate of :func:`to_nevergrad`'s parametrization stands for."""
    return dict(_read(space.root, candidate))


def _read(node: Node, param: Any) -> Any:
    if isinstance(node, Constant):
        return copy.deepcopy(node.value)
    if isinstance(node, Nested):
        return {key: _read(child, None if isinstance(child, Constant) else param[key]) for key, child in node}
    if isinstance(node, Choice):
        index = int(param.index)
        option = node.options[index]
        return _read(option, param.choices[index] if isinstance(option, Nested) else None)
    value = float(param.value)
    if isinstance(node, Float):
        value = min(max(value, node.low), node.high)  # a log transform can land an ulp outside
        if node.q is not None:
            value = min(max(_quantize(value, node.q), node.low), node.high)
        return value
    if isinstance(node, Integer):
        number = round(value)
        if node.q is not None:
            number = round(number / node.q) * node.q
        return int(min(max(number, node.low), node.max_value))
    result = NormalDist(node.mean, node.sd).inv_cdf(min(max(value, EPS), 1 - EPS))
    return _quantize(result, node.q) if node.q is not None else float(result)


def _quantize(value: float, q: float) -> float:
    steps = value / q
    return float(round(steps) * q) if math.isfinite(steps) else value


def set_config(space: Space, candidate: ng.p.Dict, config: Mapping[str, Any]) -> None:
    """Write ``config`` into ``candidate`` (a fresh child of the parametrization), in place.

    Parameters of branches the configuration did not take keep the candidate's values.

    Raises:
        ValueError: naming the key whose value the space cannot produce.
    """
    _write(space.root, candidate, config, ())


def _write(node: Node, param: Any, value: Any, path: Path) -> None:
    where = render_path(path) or "the configuration"
    if isinstance(node, Constant):
        return
    if isinstance(node, Nested):
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: expected a mapping, found {value!r}")
        missing = [key for key, _ in node if key not in value]
        if missing:
            raise ValueError(f"{where}: missing {', '.join(missing)}")
        for key, child in node:
            if not isinstance(child, Constant):
                _write(child, param[key], value[key], (*path, key))
        return
    if isinstance(node, Choice):
        index = match_option(node, value)
        if index is None:
            raise ValueError(f"{where}: {value!r} is not one of the options")
        param.indices.value = (index,)
        option = node.options[index]
        if isinstance(option, Nested):
            _write(option, param.choices[index], value, path)
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}: expected a number, found {value!r}")
    if isinstance(node, Normal):
        u = NormalDist(node.mean, node.sd).cdf(float(value))
        param.value = min(max(u, EPS), 1 - EPS)
    elif isinstance(node, Integer):
        param.value = int(min(max(round(value), node.low), node.max_value))
    else:
        param.value = min(max(float(value), node.low), node.high)
