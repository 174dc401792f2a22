"""The search-space language: typed nodes parsed from the spec's ``space`` mapping.

A space is a tree. Leaves are constants or distributions; inner nodes are nested mappings
and choices. A choice whose options are mappings is a *conditional* space: each option
(branch) has its own sub-space, sampled only when that branch is chosen.

The YAML form of every node is one mapping with one key (the operator) or a plain value::

    lr: {loguniform: [1.0e-4, 1.0e-1]}      # Float, log scale
    layers: {randint: [1, 4]}               # Integer, upper bound exclusive (as in Ray Tune)
    batch_size: {choice: [32, 64, 128]}     # Choice
    seed: {grid: [1, 2, 3]}                 # Choice, enumerated by every algorithm that can
    optimizer:
      choice:
        - {name: sgd, momentum: {uniform: [0.8, 0.99]}}
        - {name: adam}
    dropout: 0.1                            # Constant
    tags: {constant: {choice: literal}}     # Constant, even if it looks like an operator
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from raytuner.errors import Location, SpecError

Path = tuple[str | int, ...]

MAX_INT = 2**53


class Op(str, Enum):
    """Operators of the space language; the YAML key that introduces a node."""

    UNIFORM = "uniform"
    LOGUNIFORM = "loguniform"
    QUNIFORM = "quniform"
    QLOGUNIFORM = "qloguniform"
    RANDINT = "randint"
    QRANDINT = "qrandint"
    LOGRANDINT = "lograndint"
    NORMAL = "normal"
    QNORMAL = "qnormal"
    CHOICE = "choice"
    GRID = "grid"
    CONSTANT = "constant"


@dataclass(frozen=True)
class Constant:
    value: Any


@dataclass(frozen=True)
class Float:
    """A real number in [low, high], uniform on a linear or log scale, optionally rounded to q."""

    op: Op
    low: float
    high: float
    log: bool = False
    q: float | None = None


@dataclass(frozen=True)
class Integer:
    """An integer. ``randint``/``lograndint`` exclude ``high``; ``qrandint`` includes it."""

    op: Op
    low: int
    high: int
    log: bool = False
    q: int | None = None

    @property
    def max_value(self) -> int:
        return self.high if self.op is Op.QRANDINT else self.high - 1


@dataclass(frozen=True)
class Normal:
    op: Op
    mean: float
    sd: float
    q: float | None = None


@dataclass(frozen=True)
class Nested:
    items: tuple[tuple[str, Node], ...]

    def __iter__(self) -> Iterator[tuple[str, Node]]:
        return iter(self.items)


@dataclass(frozen=True)
class Choice:
    """One of ``options``. ``grid`` marks a ``grid:`` node, enumerated where the algorithm can."""

    options: tuple[Node, ...]
    grid: bool = False

    @property
    def conditional(self) -> bool:
        return any(isinstance(option, Nested) for option in self.options)


Node = Constant | Float | Integer | Normal | Nested | Choice
Distribution = Float | Integer | Normal


@dataclass(frozen=True)
class Space:
    """A parsed search space; ``root`` is the top-level mapping."""

    root: Nested

    def is_empty(self) -> bool:
        return not self.root.items


def render_path(path: Path) -> str:
    """``("space", "opt", "choice", 0, "lr")`` -> ``space.opt.choice[0].lr``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


Locator = Callable[[Path], Location]


def parse_space(raw: Any, locate: Locator, base: Path = ("space",)) -> Space:
    """Parse the ``space`` mapping of a spec into typed nodes.

    Args:
        raw: the YAML value of ``space`` (a mapping, or None for an empty space).
        locate: maps a key path to a Location (file and line) for error messages.
        base: the key path of ``raw`` in the spec.

    Raises:
        SpecError: naming the key path, what was expected and what was found.
    """
    if raw is None:
        return Space(Nested(()))
    if not isinstance(raw, Mapping):
        raise _error(locate, base, f"expected a mapping of parameter names to values, found {_kind(raw)}")
    node = _parse_mapping(raw, locate, base)
    return Space(node)


def _parse_mapping(raw: Mapping[Any, Any], locate: Locator, path: Path) -> Nested:
    items: list[tuple[str, Node]] = []
    for key, value in raw.items():
        if not isinstance(key, str) or not key:
            raise _error(locate, path, f"parameter names must be non-empty strings, found {key!r}")
        if "." in key:
            raise _error(
                locate, (*path, key), "parameter names cannot contain '.': it separates nested keys"
            )
        items.append((key, _parse_node(value, locate, (*path, key))))
    return Nested(tuple(items))


def _parse_node(raw: Any, locate: Locator, path: Path) -> Node:
    if not isinstance(raw, Mapping):
        return Constant(raw)
    ops = [key for key in raw if isinstance(key, str) and key in _OP_VALUES]
    if not ops:
        _refuse_misspelt_op(raw, locate, path)
        return _parse_mapping(raw, locate, path)
    if len(raw) != 1:
        others = ", ".join(sorted(str(k) for k in raw if k != ops[0]))
        raise _error(
            locate,
            path,
            f"a '{ops[0]}' node takes no other keys, found {others}; "
            f"to use a mapping with a '{ops[0]}' key as a value, wrap it in {{constant: ...}}",
        )
    op = Op(ops[0])
    args = raw[op.value]
    here = (*path, op.value)
    if op is Op.CONSTANT:
        return Constant(args)
    if op in (Op.CHOICE, Op.GRID):
        return _parse_choice(op, args, locate, here)
    return _PARSERS[op](args, locate, here)


def _refuse_misspelt_op(raw: Mapping[Any, Any], locate: Locator, path: Path) -> None:
    """A one-key mapping holding a list under a near-operator name is a misspelt distribution.

    Parsed as written it would be a nested constant, the same mapping for every trial. Only a
    list value counts (every operator but ``constant`` takes one), so a real sub-space
    (``{norm: {uniform: [0, 1]}}``) or constant (``{normalize: true}``) is not refused.
    """
    if len(raw) != 1:
        return
    ((key, value),) = raw.items()
    if not isinstance(key, str) or not isinstance(value, list):
        return
    close = difflib.get_close_matches(key.lower(), sorted(_OP_VALUES), n=1, cutoff=0.7)
    if close:
        raise _error(
            locate,
            path,
            f"unknown distribution '{key}': did you mean '{close[0]}'? "
            "(to use this mapping as a value, wrap it in {constant: ...})",
        )


def lookalikes(space: Space) -> list[str]:
    """Notes on nested constants shaped like a distribution (``{beta: [1, 2]}``).

    Such a mapping is a legal constant, so it is not refused; ``raytuner validate`` says what
    it became in case an operator was meant.
    """
    notes = []
    for path, node in walk(space.root, ("space",)):
        if path == ("space",) or not isinstance(node, Nested) or len(node.items) != 1:
            continue
        ((key, child),) = node.items
        if isinstance(child, Constant) and _looks_like_args(child.value):
            notes.append(
                f"{render_path(path)}: {{{key}: {child.value}}} is a constant, the same in every trial "
                f"('{key}' is not a distribution operator)"
            )
    return notes


def _looks_like_args(value: Any) -> bool:
    numbers = [v for v in value if isinstance(v, (int, float)) and not isinstance(v, bool)] if isinstance(value, list) else []
    return len(numbers) in (2, 3) and len(numbers) == len(value)


def _parse_choice(op: Op, args: Any, locate: Locator, path: Path) -> Choice:
    if not isinstance(args, list):
        raise _error(locate, path, f"expected a list of options, found {_kind(args)}")
    if not args:
        raise _error(locate, path, "expected at least one option, found an empty list")
    options = tuple(_parse_node(option, locate, (*path, i)) for i, option in enumerate(args))
    return Choice(options, grid=op is Op.GRID)


def _numbers(args: Any, locate: Locator, path: Path, names: Sequence[str], integer: bool) -> list[Any]:
    want = f"[{', '.join(names)}]"
    if not isinstance(args, list) or len(args) != len(names):
        raise _error(locate, path, f"expected a list {want}, found {_show(args)}")
    for name, value in zip(names, args, strict=True):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _error(locate, path, f"{name} must be a number, found {_show(value)}")
        if integer and not (isinstance(value, int) or float(value).is_integer()):
            raise _error(locate, path, f"{name} must be an integer, found {_show(value)}")
        if not math.isfinite(value):
            raise _error(locate, path, f"{name} must be finite, found {value}")
        if integer and abs(value) > MAX_INT:
            # HyperOpt and NumPy draw integers through floats/int64: larger ones are not exact
            raise _error(locate, path, f"{name} must be between -2**53 and 2**53, found {_show(value)}")
    return [int(v) for v in args] if integer else [float(v) for v in args]


def _check_range(low: float, high: float, locate: Locator, path: Path, log: bool) -> None:
    if low >= high:
        raise _error(locate, path, f"low must be below high, found low={_num(low)} >= high={_num(high)}")
    if log and low <= 0:
        raise _error(locate, path, f"a log scale needs low > 0, found low={_num(low)}")
    if not math.isfinite(high - low):
        raise _error(locate, path, f"the range is too wide to sample, found low={_num(low)}, high={_num(high)}")


def _check_q(q: float, locate: Locator, path: Path) -> None:
    if q <= 0:
        raise _error(locate, path, f"q must be > 0, found q={_num(q)}")


def _parse_float(op: Op) -> Callable[[Any, Locator, Path], Node]:
    log = op in (Op.LOGUNIFORM, Op.QLOGUNIFORM)
    quantized = op in (Op.QUNIFORM, Op.QLOGUNIFORM)

    def parse(args: Any, locate: Locator, path: Path) -> Node:
        names = ["low", "high", "q"] if quantized else ["low", "high"]
        values = _numbers(args, locate, path, names, integer=False)
        _check_range(values[0], values[1], locate, path, log)
        q = values[2] if quantized else None
        if q is not None:
            _check_q(q, locate, path)
        return Float(op, values[0], values[1], log=log, q=q)

    return parse


def _parse_integer(op: Op) -> Callable[[Any, Locator, Path], Node]:
    log = op is Op.LOGRANDINT
    quantized = op is Op.QRANDINT

    def parse(args: Any, locate: Locator, path: Path) -> Node:
        names = ["low", "high", "q"] if quantized else ["low", "high"]
        values = _numbers(args, locate, path, names, integer=True)
        _check_range(values[0], values[1], locate, path, log)
        q = values[2] if quantized else None
        if q is not None:
            _check_q(q, locate, path)
        return Integer(op, values[0], values[1], log=log, q=q)

    return parse


def _parse_normal(op: Op) -> Callable[[Any, Locator, Path], Node]:
    quantized = op is Op.QNORMAL

    def parse(args: Any, locate: Locator, path: Path) -> Node:
        names = ["mean", "sd", "q"] if quantized else ["mean", "sd"]
        values = _numbers(args, locate, path, names, integer=False)
        if values[1] <= 0:
            raise _error(locate, path, f"sd must be > 0, found sd={_num(values[1])}")
        q = values[2] if quantized else None
        if q is not None:
            _check_q(q, locate, path)
        return Normal(op, values[0], values[1], q=q)

    return parse


_PARSERS: dict[Op, Callable[[Any, Locator, Path], Node]] = {
    Op.UNIFORM: _parse_float(Op.UNIFORM),
    Op.LOGUNIFORM: _parse_float(Op.LOGUNIFORM),
    Op.QUNIFORM: _parse_float(Op.QUNIFORM),
    Op.QLOGUNIFORM: _parse_float(Op.QLOGUNIFORM),
    Op.RANDINT: _parse_integer(Op.RANDINT),
    Op.QRANDINT: _parse_integer(Op.QRANDINT),
    Op.LOGRANDINT: _parse_integer(Op.LOGRANDINT),
    Op.NORMAL: _parse_normal(Op.NORMAL),
    Op.QNORMAL: _parse_normal(Op.QNORMAL),
}
_OP_VALUES = {op.value for op in Op}


def _error(locate: Locator, path: Path, message: str) -> SpecError:
    return SpecError(message, locate(path))


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _show(value: Any) -> str:
    return repr(value) if not isinstance(value, Mapping) else "a mapping"


def _num(value: float) -> str:
    return f"{value:g}"


def walk(node: Node, path: Path = ()) -> Iterator[tuple[Path, Node]]:
    """Every node under ``node`` (itself included) with its path inside the space."""
    yield path, node
    if isinstance(node, Nested):
        for key, child in node:
            yield from walk(child, (*path, key))
    elif isinstance(node, Choice):
        for i, option in enumerate(node.options):
            yield from walk(option, (*path, i))
