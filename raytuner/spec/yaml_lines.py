"""Safe YAML loading that remembers the line of every key.

Only plain data is constructed (PyYAML's SafeLoader: no Python objects). Duplicate keys,
files over a size limit and structures nested too deep are refused: each would otherwise
silently change what the spec means or exhaust memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

import yaml

from raytuner.errors import Location, SpecError
from raytuner.space.model import Path

MAX_BYTES = 1_000_000
MAX_DEPTH = 64
MAX_NODES = 200_000


@dataclass
class LineMap:
    """Key paths of one YAML document mapped to 1-based line numbers."""

    source: str
    lines: dict[Path, int] = field(default_factory=dict)
    overrides: dict[Path, str] = field(default_factory=dict)

    def locate(self, path: Path) -> Location:
        """The Location of ``path``: the override that set it, else its (or its parent's) line."""
        from raytuner.space.model import render_path

        shown = render_path(path) or None
        probe = tuple(path)
        while probe:  # an override replaced this value or one that holds it
            if probe in self.overrides:
                return Location(self.overrides[probe], None, shown)
            probe = probe[:-1]
        if path:  # an override set something inside it (``--set serch.x=1`` -> the error is at serch)
            inner = [src for key, src in self.overrides.items() if key[: len(path)] == tuple(path)]
            if inner:
                return Location(inner[-1], None, shown)
        probe = tuple(path)
        while probe:
            if probe in self.lines:
                return Location(self.source, self.lines[probe], shown)
            probe = probe[:-1]
        return Location(self.source, self.lines.get(()), shown)


def load_yaml_file(path: FsPath) -> tuple[Any, LineMap]:
    """Read ``path`` and return its data and line map.

    Raises:
        SpecError: the file is missing, unreadable, too large, or not valid YAML.
    """
    source = str(path)
    if not path.exists():
        raise SpecError("file not found", Location(source))
    if path.is_dir():
        raise SpecError("expected a YAML file, found a directory", Location(source))
    try:
        # read, never stat: a device (/dev/zero) or a pipe (/dev/stdin) has no size to check first
        with path.open("rb") as stream:
            data = stream.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise SpecError(f"file is over {MAX_BYTES:,} bytes, the limit for a spec", Location(source))
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError("file is not UTF-8 text", Location(source)) from exc
    except OSError as exc:
        raise SpecError(f"cannot read file: {exc.strerror}", Location(source)) from exc
    return load_yaml_text(text, source)


def load_yaml_text(text: str, source: str) -> tuple[Any, LineMap]:
    """Parse one YAML document; see :func:`load_yaml_file`."""
    lines = LineMap(source)
    try:
        # the reader checks the characters as soon as the loader is made (ReaderError)
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", Location(source)) from exc
    try:
        node = loader.get_single_node()
        if node is None:
            return None, lines
        counter = [0]
        data = _construct(loader, node, (), lines, counter, 0)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(f"invalid YAML: {problem}", Location(source, line)) from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", Location(source)) from exc
    except RecursionError as exc:  # PyYAML's composer recurses once per level, before _construct sees it
        raise SpecError(f"nested more than {MAX_DEPTH} levels deep", Location(source)) from exc
    finally:
        loader.dispose()
    return data, lines


def _construct(
    loader: yaml.SafeLoader, node: yaml.Node, path: Path, lines: LineMap, counter: list[int], depth: int
) -> Any:
    counter[0] += 1
    line = node.start_mark.line + 1
    if depth > MAX_DEPTH:
        raise SpecError(f"nested more than {MAX_DEPTH} levels deep", Location(lines.source, line))
    if counter[0] > MAX_NODES:
        raise SpecError(f"more than {MAX_NODES:,} values (aliases included)", Location(lines.source, line))
    lines.lines.setdefault(path, line)
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_TAGS:
        # Collections are built here, not by PyYAML: refuse tags (!!python/object, !!set...)
        # rather than silently dropping them.
        raise SpecError(f"unsupported YAML tag {node.tag!r}", Location(lines.source, line))
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(loader, key_node, lines)
            if isinstance(key, (list, dict)):
                raise SpecError("mapping keys must be plain values", Location(lines.source, key_node.start_mark.line + 1))
            if key in result:
                raise SpecError(
                    f"duplicate key {key!r} (first on line {lines.lines.get((*path, key), '?')})",
                    Location(lines.source, key_node.start_mark.line + 1),
                )
            lines.lines[(*path, key)] = key_node.start_mark.line + 1
            result[key] = _construct(loader, value_node, (*path, key), lines, counter, depth + 1)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _construct(loader, item, (*path, i), lines, counter, depth + 1) for i, item in enumerate(node.value)
        ]
    return _scalar(loader, node, lines)


_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


def _scalar(loader: yaml.SafeLoader, node: yaml.Node, lines: LineMap) -> Any:
    try:
        return loader.construct_object(node, deep=True)
    except yaml.YAMLError:
        raise
    except Exception as exc:  # noqa: BLE001 - SafeConstructor raises ValueError, KeyError... for `!!int abc`
        raise SpecError(
            f"invalid YAML value {getattr(node, 'value', '')!r} for tag {node.tag!r}",
            Location(lines.source, node.start_mark.line + 1),
        ) from exc
