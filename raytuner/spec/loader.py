"""From a YAML file (and overrides) to a checked :class:`Experiment`: the one validation point.

Nothing here starts Ray or writes a file. Every error is a :class:`SpecError` that names
the file, the line and the key path, and says what was expected and what was found.
"""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

from pydantic import BaseModel, ValidationError

from raytuner.errors import Location, SpecError
from raytuner.space.model import Path, Space, parse_space
from raytuner.spec.models import NAME_PATTERN, Spec
from raytuner.spec.overrides import apply_overrides
from raytuner.spec.yaml_lines import LineMap, load_yaml_file, load_yaml_text


@dataclass(frozen=True)
class Experiment:
    """A validated spec with its parsed space and where it came from."""

    spec: Spec
    space: Space
    source: str
    base_dir: FsPath

    def resolved(self) -> dict[str, Any]:
        """The spec as plain data, every default filled in (written next to the results), its
        storage URI without the credentials it may carry."""
        from raytuner.results.remote import redact

        data: dict[str, Any] = self.spec.model_dump(mode="json")
        data["storage"] = redact(data["storage"])
        return data


def load_experiment(
    path: str | FsPath,
    overrides: Sequence[str] = (),
    *,
    name: str | None = None,
    storage: str | None = None,
) -> Experiment:
    """Load, override and validate the spec at ``path``.

    Args:
        path: the YAML file.
        overrides: ``key.path=value`` strings (``--set``).
        name: replaces the spec's ``name`` (``--name``).
        storage: replaces the spec's ``storage`` (``--storage``).

    Raises:
        SpecError: anything wrong with the file, the overrides or their combination.
    """
    file = FsPath(path)
    data, lines = load_yaml_file(file)
    return build_experiment(data, lines, overrides, name=name, storage=storage, base_dir=file.resolve().parent)


def load_experiment_text(text: str, source: str = "<spec>", overrides: Sequence[str] = ()) -> Experiment:
    """Like :func:`load_experiment`, for YAML text (tests, ``raytuner init`` round trips)."""
    data, lines = load_yaml_text(text, source)
    return build_experiment(data, lines, overrides, base_dir=FsPath.cwd())


def build_experiment(
    data: Any,
    lines: LineMap,
    overrides: Sequence[str] = (),
    *,
    name: str | None = None,
    storage: str | None = None,
    base_dir: FsPath,
) -> Experiment:
    """Validate already-parsed YAML data; see :func:`load_experiment`."""
    if data is None:
        raise SpecError("the spec is empty; `raytuner init` writes a starter spec", Location(lines.source, 1))
    if not isinstance(data, dict):
        raise SpecError(f"expected a mapping of spec keys at the top level, found {type(data).__name__}", lines.locate(()))
    flags = list(overrides)
    if name is not None:
        flags.append(f"name={_quote(name)}")
    if storage is not None:
        flags.append(f"storage={_quote(storage)}")
    data, sources = apply_overrides(data, flags)
    # --name and --storage are applied as overrides, but errors name the flag the user gave
    if name is not None:
        sources[("name",)] = f"--name {shlex.quote(name)}"
    if storage is not None:
        sources[("storage",)] = f"--storage {shlex.quote(storage)}"
    lines.overrides.update(sources)
    if "name" not in data:
        data["name"] = _default_name(lines.source)
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        raise _first_error(exc, data, lines) from exc
    spec = _apply_preset(spec, lines)
    space = parse_space(spec.space, lines.locate)
    experiment = Experiment(spec, space, lines.source, base_dir)
    from raytuner.spec.checks import check_experiment

    check_experiment(experiment, lines.locate)
    return experiment


def _apply_preset(spec: Spec, lines: LineMap) -> Spec:
    """The spec with its ``space_preset`` expanded; the spec's own space keys win."""
    if spec.space_preset is None:
        return spec
    from raytuner.spec.presets import recommended_space
    from raytuner.spec.torch_options import TorchTrainableBase

    if not isinstance(spec.trainable, TorchTrainableBase):
        raise SpecError(
            "space_preset is for the built-in torch workloads (mlp_classifier, mlp_regressor, cnn_classifier)",
            lines.locate(("space_preset",)),
        )
    merged = recommended_space(spec.space_preset)
    merged.update(spec.space)
    return spec.model_copy(update={"space": merged})


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _default_name(source: str) -> str:
    stem = FsPath(source).stem if not source.startswith("<") else "experiment"
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._") or "experiment"
    return cleaned if re.match(NAME_PATTERN, cleaned) else "experiment"


# ---------------------------------------------------------------------------- error text


def _first_error(exc: ValidationError, data: Mapping[str, Any], lines: LineMap) -> SpecError:
    errors = exc.errors(include_url=False)
    err = errors[0]
    path, message = _describe(err, data)
    more = len(errors) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return SpecError(message, lines.locate(path))


def _data_path(loc: Sequence[Any], data: Any) -> tuple[Path, Any]:
    """Keep the parts of a pydantic ``loc`` that exist in ``data`` (union tags do not)."""
    path: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, Mapping) and part in node or isinstance(node, list) and isinstance(part, int) and part < len(node):
            path.append(part)
            node = node[part]
    return tuple(path), node


def _describe(err: Mapping[str, Any], data: Mapping[str, Any]) -> tuple[Path, str]:
    kind = err["type"]
    loc = err["loc"]
    ctx = err.get("ctx") or {}
    if kind == "missing":
        path, _ = _data_path(loc[:-1], data)
        return (*path, loc[-1]), f"required key '{loc[-1]}' is missing"
    path, value = _data_path(loc, data)
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1], data)
        hint = ""
        if allowed:
            # a prefix ('grace' -> grace_period) beats difflib's ratio, which prefers 'brackets'
            prefixed = [key for key in allowed if key.startswith(str(loc[-1]))]
            close = prefixed[:1] or difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; expected one of {', '.join(sorted(allowed))}"
        return path, f"unknown key '{loc[-1]}'{hint}"
    if kind == "union_tag_invalid":
        key = ctx.get("discriminator", "").strip("'")
        key = {"_search_tag()": "algorithm"}.get(key, key)
        tag = ctx.get("tag")
        # Enum-valued tags come as reprs ("<SchedulerType.ASHA: 'asha'>"): show the values
        expected = re.sub(r"<\w+\.\w+: ('[^']*')>", r"\1", str(ctx.get("expected_tags")))
        # the union's own Tag can already end the path (trainable.builtin): do not repeat it
        where = path if path and path[-1] == key else (*path, key)
        return where, f"expected one of {expected}, found '{tag}'"
    if kind == "union_tag_not_found":
        key = ctx.get("discriminator", "").strip("'")
        return path, f"required key '{key}' is missing"
    if kind == "trainable_kind":
        found = ", ".join(str(k) for k in value) if isinstance(value, Mapping) else repr(value)
        return path, f"{err['msg']}; found {found or 'nothing'}"
    message = str(err["msg"])
    message = message.removeprefix("Value error, ")
    message = message[0].lower() + message[1:] if message else message
    if kind in ("value_error", "assertion_error"):
        return path, message
    return path, f"{message}; found {_show(err.get('input'))}"


def _show(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    return repr(value)


def _allowed_keys(loc: Sequence[Any], data: Mapping[str, Any]) -> list[str]:
    """The keys the model at ``loc`` accepts, following union tags as pydantic names them."""
    candidates: list[type[BaseModel]] = [Spec]
    for part in loc:
        fields = [m.model_fields[part] for m in candidates if isinstance(part, str) and part in m.model_fields]
        candidates = _models_in(fields[0].annotation) if fields else [m for m in candidates if _tag_matches(m, part)]
        if not candidates:
            return []
    if len(candidates) != 1:
        return []
    return sorted(field.alias or name for name, field in candidates[0].model_fields.items())  # YAML keys


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _tag_matches(model: type[BaseModel], tag: Any) -> bool:
    for field in model.model_fields.values():
        for arg in (field.default, *getattr(field.annotation, "__args__", ())):
            if getattr(arg, "value", arg) == tag:
                return True
    return False
