"""Import rules: the core never imports Flask, HTTP clients or database drivers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ADAPTER = Path(__file__).resolve().parents[2] / "adapter"
CORE = ["fhirio", "search", "validation", "definitions", "services"]
FORBIDDEN = {"flask", "werkzeug", "requests", "psycopg", "sqlite3"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", CORE)
def test_core_package_does_not_import_io_frameworks(package: str) -> None:
    offenders = {
        str(path.relative_to(ADAPTER)): sorted(_imports(path) & FORBIDDEN)
        for path in (ADAPTER / package).rglob("*.py")
        if _imports(path) & FORBIDDEN
    }
    assert offenders == {}
