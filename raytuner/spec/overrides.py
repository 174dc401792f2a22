"""``--set key.path=value`` overrides, applied to the raw spec before it is validated.

Values are YAML (``0.1`` is a float, ``true`` a bool, ``[1, 2]`` a list, ``{a: 1}`` a
mapping), so an override is typed and validated exactly like the same value in the file.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from raytuner.errors import Location, SpecError
from raytuner.space.model import Path
from raytuner.spec.yaml_lines import load_yaml_text


def parse_override(text: str) -> tuple[Path, Any]:
    """Split ``a.b.0.c=value`` into its key path and YAML value.

    Raises:
        SpecError: the text has no ``=``, an empty key, or a value that is not YAML.
    """
    where = Location(f"--set {text}")
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep:
        raise SpecError("expected KEY.PATH=VALUE, found no '='", where)
    parts = key.split(".")
    if not key or any(not part for part in parts):
        raise SpecError(f"expected a dotted key path like search.num_samples, found {key!r}", where)
    try:
        # the file's loader, so its limits (aliases, depth, tags) hold for a value given here
        value = load_yaml_text(raw, where.source or "--set")[0] if raw.strip() else ""
    except SpecError as exc:
        raise SpecError(f"value: {exc.message}", where) from exc
    path: Path = tuple(int(part) if part.isdigit() else part for part in parts)
    return path, value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> tuple[dict[str, Any], dict[Path, str]]:
    """A copy of ``data`` with every override applied, and where each one came from.

    Raises:
        SpecError: an override goes through a value that is not a mapping or list.
    """
    result = copy.deepcopy(data)
    sources: dict[Path, str] = {}
    for text in overrides:
        path, value = parse_override(text)
        _set(result, path, value, Location(f"--set {text}"))
        sources[path] = f"--set {text}"
    return result, sources


def _set(data: Any, path: Path, value: Any, where: Location) -> None:
    target = data
    for depth, part in enumerate(path[:-1]):
        nxt = path[depth + 1]
        if isinstance(target, dict):
            if part not in target or target[part] is None:
                target[part] = {}
            target = target[part]
        elif isinstance(target, list) and isinstance(part, int):
            if part >= len(target):
                raise SpecError(f"index {part} is past the end of a list of {len(target)}", where)
            target = target[part]
        else:
            done = ".".join(str(p) for p in path[: depth + 1])
            raise SpecError(f"{done} is {type(target).__name__}, cannot set {nxt!r} inside it", where)
    last = path[-1]
    if isinstance(target, list) and isinstance(last, int):
        if last >= len(target):
            raise SpecError(f"index {last} is past the end of a list of {len(target)}", where)
        target[last] = value
    elif isinstance(target, dict):
        target[last] = value
    else:
        done = ".".join(str(p) for p in path[:-1]) or "the spec"
        raise SpecError(f"{done} is {type(target).__name__}, cannot set {last!r} inside it", where)
