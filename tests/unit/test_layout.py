"""pxelab's layout stays as its folders say: no import cycles, no import from a room above.

The import graph is read from the source with ast (every import, also those inside
functions and under ``if TYPE_CHECKING``: a cycle there is still two modules that
each need the other). Each room's ``__init__`` docstring has a ``May import:`` line;
the test holds the room to it. Every module must also import on its own in a fresh
interpreter, so none relies on another having been imported first.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import pxelab

pytestmark = pytest.mark.unit

PACKAGE = Path(pxelab.__file__).parent
ROOMS = ("core", "server", "daemons", "machine", "scenarios", "labfile", "analysis")
TOP = {"pxelab", "pxelab.lab", "pxelab.cli", "pxelab.pytest_plugin", "pxelab.pytest_labfiles",
       "pxelab.pytest_support"}  # may import any room


def module_names() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


MODULES = module_names()


def _known(name: str) -> str:
    """``name``, or the innermost pxelab module that contains it (an attribute's module)."""
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def imported(module: str, path: Path) -> Iterator[str]:
    """The pxelab modules ``module`` imports."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name == "pxelab" or name.startswith("pxelab."):
                yield _known(name)


GRAPH = {module: set(imported(module, path)) - {module} for module, path in MODULES.items()}


def room_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ROOMS else "top"


def allowed(room: str) -> set[str]:
    """The rooms ``room``'s ``__init__`` docstring lets it import, itself included."""
    doc = ast.get_docstring(ast.parse((PACKAGE / room / "__init__.py").read_text())) or ""
    found = re.search(r"^May import: (.*)$", doc, re.MULTILINE)
    assert found, f"pxelab/{room}/__init__.py: its docstring has no 'May import:' line"
    return {room} | set(re.findall(r"pxelab\.(\w+)", found.group(1)))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_the_package() -> None:
    # A walker that missed imports would pass everything below.
    assert "pxelab.server.bootserver" in GRAPH["pxelab.lab"]
    assert "pxelab.core.errors" in GRAPH["pxelab.server.policy"]
    assert {room_of(m) for m in MODULES} == {*ROOMS, "top"}


def test_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    assert cycles(GRAPH) == []


@pytest.mark.parametrize("room", ROOMS)
def test_room_imports_only_what_its_docstring_allows(room: str) -> None:
    rooms = allowed(room)
    wrong = sorted(f"{module} imports {target}"
                   for module, targets in GRAPH.items() if room_of(module) == room
                   for target in targets if room_of(target) not in rooms)
    assert wrong == [], f"pxelab/{room}/ may import {sorted(rooms)} only"


def test_the_rooms_are_layered() -> None:
    # Every room may import only rooms listed before it (the order of ROOMS), and core
    # nothing: so no two rooms can import each other.
    for position, room in enumerate(ROOMS):
        assert allowed(room) <= set(ROOMS[:position + 1]), room


def _import_alone(module: str) -> tuple[str, str]:
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                          text=True, timeout=120, check=False)
    return module, done.stderr.strip().splitlines()[-1] if done.returncode else ""


def test_every_module_imports_on_its_own() -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        failed = {module: error for module, error in pool.map(_import_alone, sorted(MODULES))
                  if error}
    assert failed == {}
