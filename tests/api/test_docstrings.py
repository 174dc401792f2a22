"""Everything public has a docstring: each name ``raytuner`` exports, and each public method and
property of the classes among them (issue 20: docstrings on everything public)."""

from __future__ import annotations

import inspect
from typing import Any

import raytuner


def _own_members(cls: type) -> list[tuple[str, Any]]:
    """Public methods and properties defined by raytuner (not inherited from pydantic, object...)."""
    members = []
    for name, value in inspect.getmembers(cls):
        if name.startswith("_") and name != "__init__":
            continue
        code = value.fget if isinstance(value, property) else value
        if not (inspect.isfunction(code) and code.__module__.startswith("raytuner")):
            continue
        members.append((name, code))
    return members


def test_every_public_name_and_member_has_a_docstring() -> None:
    missing = []
    for name in raytuner.__all__:
        value = getattr(raytuner, name)
        if not (inspect.isclass(value) or inspect.isfunction(value)):
            continue  # __version__ and the type aliases
        if not (inspect.getdoc(value) or "").strip():
            missing.append(name)
        if inspect.isclass(value):
            missing += [f"{name}.{member}" for member, code in _own_members(value) if not (inspect.getdoc(code) or "").strip()]
    assert "Experiment" in raytuner.__all__ and "run" in raytuner.__all__
    assert missing == []
