"""JSON as strict parsers read it: NaN and infinities (a diverged trial's loss) become null.

Python's ``json.dumps`` writes ``NaN`` and ``Infinity``, which are not JSON: ``jq``, browsers
and most other languages' parsers refuse the whole document. Every JSON raytuner prints
goes through :func:`dumps`, which checks with ``allow_nan=False`` that none is left.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def finite(value: Any) -> Any:
    """``value`` with every non-finite float in it (in dicts, lists, tuples) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key: finite(inner) for key, inner in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(inner) for inner in value]
    return value


def dumps(value: Any, *, indent: int | None = None) -> str:
    """Strict JSON text of ``value``; objects JSON has no type for are written as ``str()``."""
    import json

    return json.dumps(finite(value), indent=indent, default=_text, allow_nan=False)


def _text(value: Any) -> Any:
    """``default`` for ``json.dumps``: a numpy scalar becomes its Python number, still checked."""
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return finite(item())
    return str(value)
