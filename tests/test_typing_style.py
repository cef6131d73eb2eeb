"""One typing style in the project's annotations: ``X | None``, ``list[str]``, ``dict[str, int]``.

The project targets Python 3.10+ with ``from __future__ import annotations``; the ``typing``
aliases (``Optional``, ``List``, ``Dict``, ...) stood beside the builtin forms in some folders. This
test reads every annotation (arguments, returns, annotated assignments) of every tracked module and
refuses the old forms. Runtime uses of ``typing.Optional`` (building Beam schema types from field
lists in ``schemas/fields.py``) are values, not annotations, and stay allowed.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FOLDERS = ("connectors", "models", "pipelines", "report", "runners", "schemas", "tools", "transforms", "tests",
           "deploy")
OLD_FORMS = frozenset({"Optional", "Union", "List", "Dict", "Tuple", "Set", "FrozenSet", "Type", "DefaultDict"})


def annotations(tree: ast.AST) -> list[ast.expr]:
    """Every annotation expression in a module."""
    found: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
                if arg is not None and arg.annotation is not None:
                    found.append(arg.annotation)
            if node.returns is not None:
                found.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            found.append(node.annotation)
    return found


def old_forms(source: str) -> list[str]:
    """The old typing aliases a module's annotations use, as ``line: name``."""
    hits = []
    for annotation in annotations(ast.parse(source)):
        for node in ast.walk(annotation):
            name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
            if name in OLD_FORMS:
                hits.append(f"{node.lineno}: {name}")
            if isinstance(node, ast.Constant) and isinstance(node.value, str):  # a quoted annotation
                hits.extend(old_forms_in_string(node.value, node.lineno))
    return hits


def old_forms_in_string(text: str, lineno: int) -> list[str]:
    try:
        expression = ast.parse(text, mode="eval")
    except SyntaxError:
        return []
    names = ((n, n.attr if isinstance(n, ast.Attribute) else n.id) for n in ast.walk(expression)
             if isinstance(n, (ast.Attribute, ast.Name)))
    return [f"{lineno}: {name}" for _, name in names if name in OLD_FORMS]


@pytest.mark.parametrize(("source", "expected"), [
    ("def f(x: typing.Optional[int]) -> None: ...", ["1: Optional"]),
    ("from typing import List\ndef f() -> List[str]: ...", ["2: List"]),
    ("x: 'Dict[str, int]' = {}", ["1: Dict"]),
    ("class A:\n    y: typing.Union[int, str]", ["2: Union"]),
    ("def f(x: int | None, *a: str, **k: dict[str, list[int]]) -> tuple[int, ...]: ...", []),
    ("T = typing.Optional[int]\nmake = lambda t: typing.List[t]", []),  # values, not annotations
])
def test_old_forms_are_found_in_annotations_only(source: str, expected: list[str]) -> None:
    assert old_forms(source) == expected


def test_the_project_annotates_in_one_style() -> None:
    modules = sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py")) + [ROOT / "setup.py"]
    assert len(modules) > 100
    offenders = {str(p.relative_to(ROOT)): hits for p in modules if (hits := old_forms(p.read_text(encoding="utf-8")))}
    assert offenders == {}
