"""No import circle inside raytuner/results/, nor inside raytuner/execution/ (the runner and
its backends; issue 20), imports inside functions counted too; only those under
``if TYPE_CHECKING:`` do not."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2]


def _module(path: Path) -> str:
    parts = list(path.relative_to(SOURCE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    tree = ast.parse(path.read_text())
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & modules
            found |= submodules if len(submodules) == len(node.names) else {node.module, *submodules}
    return found & modules - {_module(path)}


@pytest.mark.parametrize("package", ["results", "execution"])
def test_no_module_of_the_package_imports_itself_back(package: str) -> None:
    paths = {_module(path): path for path in (SOURCE / "raytuner" / package).rglob("*.py")}
    edges = {name: _imports(path, set(paths)) for name, path in paths.items()}
    for start in edges:
        seen: set[str] = set()
        todo = list(edges[start])
        while todo:
            name = todo.pop()
            assert name != start, f"{start} imports itself back (through {sorted(seen)})"
            if name not in seen:
                seen.add(name)
                todo.extend(edges[name])
