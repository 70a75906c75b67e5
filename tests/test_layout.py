"""The package's layers, read from its source: every import (function-level ones included) goes down
or sideways, never up, and no modules import each other in a circle; no module is over 400 lines.

core < book < backends < the public API (``d2lconv/__init__.py``, ``porting.py``) < harness < cli.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "d2lconv"
LAYERS = ("core", "book", "backends", "api", "harness", "cli")
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "api"


def imports(module: str) -> set[str]:
    """The d2lconv modules that ``module`` imports anywhere in its source, as module names."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join([*base, *([node.module] if node.module else [])])
            # ``from X import name``: the submodule X.name when there is one, else X itself
            found |= {
                f"{target}.{alias.name}" if f"{target}.{alias.name}" in MODULES else target for alias in node.names
            }
    return {name for name in found if name in MODULES and name != module}


GRAPH = {module: imports(module) for module in MODULES}


def test_the_layers_are_read_from_every_module():
    assert {layer(module) for module in MODULES} == set(LAYERS)
    assert GRAPH["d2lconv.cli"] and GRAPH["d2lconv.harness.parity.run"]  # the scan sees imports


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_layer_above_its_own(module):
    upward = sorted(name for name in GRAPH[module] if LAYERS.index(layer(name)) > LAYERS.index(layer(module)))
    assert not upward, f"{module} ({layer(module)}) imports {upward}"


def test_no_import_circle():
    """Tarjan's strongly connected components: a component of two or more modules is a circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for name in GRAPH[module]:
            if name not in index:
                visit(name)
                low[module] = min(low[module], low[name])
            elif name in stack:
                low[module] = min(low[module], index[name])
        if low[module] == index[module]:
            component = []
            while True:
                name = stack.pop()
                component.append(name)
                if name == module:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in MODULES:
        if module not in index:
            visit(module)
    assert circles == []


def test_a_circle_would_be_found(monkeypatch):
    monkeypatch.setitem(GRAPH, "d2lconv.core.checks", GRAPH["d2lconv.core.checks"] | {"d2lconv.book.ops"})
    monkeypatch.setitem(GRAPH, "d2lconv.book.ops", GRAPH["d2lconv.book.ops"] | {"d2lconv.core.checks"})
    with pytest.raises(AssertionError):
        test_no_import_circle()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_over_400_lines(module):
    assert len(MODULES[module].read_text().splitlines()) <= MAX_LINES
