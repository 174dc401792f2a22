"""A configuration back to a searcher's own parameters: the walk HyperOpt and Optuna share.

Both searchers name each active node by its path label and record a choice by the index of
the option the configuration took; they differ only in how a number is encoded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from raytuner.space.hyperopt import label, match_option
from raytuner.space.model import Choice, Constant, Nested, Node, Path, Space, render_path

Encode = Callable[[Node, Any, str], Any]


def assign(space: Space, config: Mapping[str, Any], encode: Encode) -> dict[str, Any]:
    """Label -> value for every active node of ``space`` in ``config``.

    Args:
        space: the parsed space.
        config: a configuration the space can produce.
        encode: turns a number for a distribution node into the searcher's value; raises
            ValueError (with the ``where`` text it is given) for one it cannot take.

    Raises:
        ValueError: naming the key whose value the space cannot produce.
    """
    out: dict[str, Any] = {}
    _walk(space.root, config, (), out, encode)
    return out


def _walk(node: Node, value: Any, path: Path, out: dict[str, Any], encode: Encode) -> None:
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
            _walk(child, value[key], (*path, key), out, encode)
        return
    if isinstance(node, Choice):
        index = match_option(node, value)
        if index is None:
            raise ValueError(f"{where}: {value!r} is not one of the options")
        out[label(path)] = index
        _walk(node.options[index], value, (*path, index), out, encode)
        return
    out[label(path)] = encode(node, value, where)
