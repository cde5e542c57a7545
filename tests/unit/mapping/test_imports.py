"""The mapping core does no I/O of its own kind: no Flask, no HTTP client, no database driver."""

from __future__ import annotations

import ast
from pathlib import Path

MAPPING = Path(__file__).resolve().parents[3] / "adapter" / "mapping"
FORBIDDEN = {"flask", "werkzeug", "requests", "psycopg", "sqlite3", "sqlalchemy", "httpx", "urllib3"}


def test_mapping_imports_no_io_framework() -> None:
    offenders = {}
    for path in MAPPING.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        if names & FORBIDDEN:
            offenders[path.name] = sorted(names & FORBIDDEN)
    assert offenders == {}
