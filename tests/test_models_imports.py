"""The modules of `models/` import one another without a circle, counting imports inside functions too.

A function-level import hides a circle from Python at import time, not from a reader: two modules that
need each other cannot be understood, tested or moved one at a time. The graph is read from the source
with `ast`, so it holds for every import a module can make, not only those an import runs.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

MODELS = pathlib.Path(__file__).resolve().parents[1] / "models"


def imported_models(source: str, package: str = "models") -> set[str]:
    """The `models.<name>` modules a module's source imports anywhere (module, class or function level)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from models import x` imports the submodule x; `from models.x import y` imports x.
            names = ([f"{node.module}.{alias.name}" for alias in node.names] if node.module == package
                     else [node.module])
        elif isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [f"{package}.{node.module}"] if node.module else [f"{package}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == package and len(parts) > 1:
                found.add(parts[1])
    return found


def import_graph(folder: pathlib.Path = MODELS) -> dict[str, set[str]]:
    """Module name -> the modules of the same package it imports."""
    modules = {path.stem: path for path in folder.glob("*.py") if path.stem != "__init__"}
    return {name: imported_models(path.read_text(encoding="utf-8")) & set(modules) - {name}
            for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A circle of the graph as a path that comes back to its start, or None when it is acyclic."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" once all below it is seen
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for child in sorted(graph.get(node, ())):
            if state.get(child) == "open":
                return path[path.index(child):] + [child]
            if child not in state and (cycle := visit(child)) is not None:
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


@pytest.mark.parametrize(("source", "expected"), [
    ("from models.encoder import E5Encoder", {"encoder"}),
    ("def f():\n    from models.hf import HFSequenceModel\n", {"hf"}),
    ("import models.text\nfrom models import head, taxonomy", {"text", "head", "taxonomy"}),
    ("from . import scorer\nfrom .loader import load_scorer", {"scorer", "loader"}),
    ("import numpy\nfrom schemas import Mention", set()),
])
def test_imports_are_read_at_every_level(source, expected):
    assert imported_models(source) == expected


def test_find_cycle_finds_a_function_level_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_models_modules_import_each_other_without_a_circle():
    graph = import_graph()
    assert len(graph) > 10 and any(graph.values())  # the real package was read
    assert find_cycle(graph) is None, f"import circle: {' -> '.join(find_cycle(graph))}"
