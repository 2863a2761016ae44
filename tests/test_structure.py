"""The package's structure: no import cycle inside `actorflow/` (every import, function-level included)."""

from __future__ import annotations

import ast

import pytest

from conftest import REPO

pytestmark = pytest.mark.timeout(60)

PACKAGE = REPO / "actorflow"


def _modules() -> dict[str, ast.Module]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = ast.parse(path.read_text())
    return modules


def _imports(modules: dict[str, ast.Module]) -> dict[str, set[str]]:
    """Module → the package modules it imports (TYPE_CHECKING blocks excluded)."""

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, tree in modules.items():
        typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                       and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                targets = [resolve(alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [resolve(f"{node.module}.{alias.name}") for alias in node.names]
            else:
                continue
            # `from actorflow import X` inside the package is the package's re-export, not a cycle
            graph[name] |= {t for t in targets if t and t != name and t != "actorflow"}
    return graph


def test_no_import_cycle_inside_the_package():
    graph = _imports(_modules())
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(target):] + [target]))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
