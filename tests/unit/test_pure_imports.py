"""The pure modules import only the standard library and each other: no network, terminal or CLI
libraries, and no file, process or clock access."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import regpeek

PACKAGE = Path(regpeek.__file__).resolve().parent
# Every module of regpeek.formats, and the exception tree every layer shares.
PURE = ["errors", *sorted(f"formats.{p.stem}" for p in (PACKAGE / "formats").glob("*.py"))]
PURE_MODULES = {f"regpeek.{name}" for name in PURE} | {"regpeek.formats"}

PACKAGES = {"regpeek"} | {f"regpeek.{p.parent.name}" for p in PACKAGE.glob("*/__init__.py")}

# Standard-library modules a pure module may use: data handling only.
STDLIB_ALLOWED = {
    "__future__", "base64", "binascii", "collections", "collections.abc", "dataclasses", "datetime", "enum",
    "functools", "hashlib", "ipaddress", "itertools", "json", "math", "operator", "re", "string", "typing",
}  # fmt: skip
# Builtins that reach outside the process's own data.
FORBIDDEN_CALLS = {"open", "input", "print", "__import__", "eval", "exec", "compile", "breakpoint"}
# Methods that read the clock (datetime is allowed for its values, not for the time of day).
FORBIDDEN_METHODS = {"now", "today", "utcnow", "fromtimestamp", "utcfromtimestamp", "time", "monotonic"}


def _type_only(tree: ast.AST) -> set[int]:
    """The ids of the nodes under ``if TYPE_CHECKING:``: imports there never run."""
    return {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        for statement in node.body
        for inner in ast.walk(statement)
    }


def _imports(tree: ast.AST) -> list[str]:
    """Every module a file imports at run time (``from regpeek import x`` counts as ``regpeek.x``);
    type-only imports (under ``if TYPE_CHECKING:``) are left out, they never run."""
    found: list[str] = []
    skipped = _type_only(tree)
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.append("<relative import>")
            elif node.module in PACKAGES:
                found += [f"{node.module}.{alias.name}" for alias in node.names]
            elif node.module is not None:
                found.append(node.module)
    return found


def _tree(name: str) -> ast.Module:
    path = PACKAGE / (name.replace(".", "/") + ".py")
    return ast.parse(path.read_text(), filename=str(path))


@pytest.mark.parametrize("name", PURE)
def test_pure_module_imports(name: str) -> None:
    bad = []
    for module in _imports(_tree(name)):
        if module.startswith("regpeek"):
            if module not in PURE_MODULES:
                bad.append(module)
        elif module not in STDLIB_ALLOWED or module.split(".")[0] not in sys.stdlib_module_names:
            bad.append(module)
    assert bad == []


@pytest.mark.parametrize("name", PURE)
def test_pure_module_makes_no_outside_calls(name: str) -> None:
    calls = [
        node.func.id
        for node in ast.walk(_tree(name))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS
    ]
    clock = [
        node.func.attr
        for node in ast.walk(_tree(name))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in FORBIDDEN_METHODS
    ]
    assert calls == []
    assert clock == []


def test_type_only_imports_do_not_count() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from regpeek.disk.layout import X\n"
    )
    assert _imports(tree) == ["typing"]


def test_checker_catches_impure_code() -> None:
    tree = ast.parse(
        "import os\nimport httpx\nfrom rich.console import Console\nfrom regpeek.network import auth\n"
        "from . import x\nopen('f')\n"
    )
    assert _imports(tree) == ["os", "httpx", "rich.console", "regpeek.network.auth", "<relative import>"]
    assert not {"os", "httpx", "rich.console"} & STDLIB_ALLOWED
    assert "regpeek.network.auth" not in PURE_MODULES


def test_every_pure_module_exists() -> None:
    assert len(PURE) > 10
    assert all((PACKAGE / (name.replace(".", "/") + ".py")).is_file() for name in PURE)
