"""Every place raytuner reaches into Ray's private modules or sets a private attribute of a Ray
object is named in docs/architecture.md's "Ray internals raytuner sets", with why no public
API serves: a new one fails here until it is listed (issue 20, part 4)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Ray internals raytuner sets"


def _private_module(name: str) -> bool:
    parts = name.split(".")
    return parts[0] == "ray" and any(part.startswith("_") for part in parts[1:])


def _ray_names(tree: ast.AST) -> set[str]:
    """The names a module binds to Ray's modules and objects (``from ray.x import y``, ``import ray``)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "ray" and not node.level:
            names |= {alias.asname or alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name.split(".")[0] == "ray"}
    return names


def _reaches_in(node: ast.AST, ray_names: set[str]) -> bool:
    """An import of a private Ray module or name, or an assignment to a private attribute of a
    Ray object (or to any attribute of a Ray module)."""
    if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "ray" and not node.level:
        return _private_module(node.module) or any(alias.name.startswith("_") for alias in node.names)
    if isinstance(node, ast.Import):
        return any(_private_module(alias.name) for alias in node.names)
    if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            for each in target.elts if isinstance(target, ast.Tuple) else [target]:
                if not isinstance(each, ast.Attribute) or each.attr.startswith("__"):
                    continue
                base = each.value
                while isinstance(base, ast.Attribute):
                    base = base.value
                name = base.id if isinstance(base, ast.Name) else None
                if name not in ("self", "cls") and (each.attr.startswith("_") or name in ray_names):
                    return True
    return False


def _places() -> set[tuple[str, str]]:
    """(module path under raytuner/, innermost function) of every reach into Ray's internals."""
    found: set[tuple[str, str]] = set()
    for path in sorted((ROOT / "raytuner").rglob("*.py")):
        tree = ast.parse(path.read_text())
        ray_names = _ray_names(tree)
        if not ray_names:
            continue

        def visit(node: ast.AST, where: str, ray_names: set[str] = ray_names, path: Path = path) -> None:
            for child in ast.iter_child_nodes(node):
                inner = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else where
                if _reaches_in(child, ray_names):
                    found.add((path.relative_to(ROOT / "raytuner").as_posix(), inner))
                visit(child, inner)

        visit(tree, "<module>")
    return found


def test_every_reach_into_rays_internals_is_listed_in_the_docs() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    assert SECTION in text
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    places = _places()
    assert ("execution/session.py", "loopback_only") in places  # the scan sees a known one
    unlisted = sorted(f"{module} {function}" for module, function in places if f"`{module}` `{function}`" not in section)
    assert not unlisted, f"not in docs/architecture.md ({SECTION}): {unlisted}"
