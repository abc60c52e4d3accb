"""No module-level name in pxelab that nothing reads: dead code goes.

A class, function or constant defined at the top of a module and named nowhere else
(pxelab, tests, bench, tools; re-exports in ``__init__`` do not count as a use) is
reported. pytest fixtures and hooks are used by name through pytest.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "pxelab"


def _sources() -> dict[Path, str]:
    paths = [p for d in ("pxelab", "tests", "bench", "tools") for p in (REPO / d).rglob("*.py")]
    paths.append(REPO / "conftest.py")
    return {p: p.read_text() for p in paths if p.exists() and ".venv" not in p.parts}


def _defined(tree: ast.Module) -> list[str]:
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            fixture = any("fixture" in ast.unparse(d) for d in node.decorator_list)
            if not fixture and not node.name.startswith(("_", "pytest_")):
                names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [t.id for t in targets
                      if isinstance(t, ast.Name) and not t.id.startswith("_") and t.id.isupper()]
    return names


def unused_names() -> list[str]:
    sources = _sources()
    words = {path: Counter(re.findall(r"\w+", text)) for path, text in sources.items()}
    elsewhere: Counter[str] = Counter()
    for path, counts in words.items():
        if path.name != "__init__.py":
            elsewhere.update(counts)
    found = []
    for path, text in sources.items():
        if not path.is_relative_to(PACKAGE) or path.name == "__init__.py":
            continue
        for name in _defined(ast.parse(text)):
            if words[path][name] == 1 and elsewhere[name] == 1:  # only its definition
                found.append(f"{path.relative_to(REPO)}: {name}")
    return found


def test_every_module_level_name_is_used() -> None:
    assert unused_names() == []
