"""What the profile tests share: where the package and its examples are, and how issues are compared."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from adapter.errors import Issue
from adapter.profiles import CANONICAL, PROFILES_DIR, package_dir

PACKAGE = package_dir()
EXAMPLES = PROFILES_DIR / "examples"
SOURCE = PROFILES_DIR / "source"
SD_PREFIX = f"{CANONICAL}/StructureDefinition/"
BLOCKING = ("error", "fatal")


def read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def index() -> dict:
    """profiles/examples/index.json: every example, its profile, and the violations an invalid one causes."""
    return read(EXAMPLES / "index.json")


def examples(valid: bool) -> list[dict]:
    return [e for e in index()["examples"] if e["valid"] is valid]


def bundle_entry(valid: bool) -> dict:
    return next(b for b in index()["bundles"] if b["valid"] is valid)


def example(entry: dict) -> dict:
    return read(EXAMPLES / entry["file"])


def example_id(entry: dict) -> str:
    return entry["file"]


def package_resources() -> dict[str, dict]:
    """Every resource file of the package by file name (package.json and .index.json excluded)."""
    return {
        p.name: read(p)
        for p in sorted(PACKAGE.glob("*.json"))
        if p.name not in ("package.json", ".index.json")
    }


def errors(issues: list[Issue]) -> set[tuple[str, str]]:
    """(expression, code) of every blocking issue."""
    return {(i.expression[0] if i.expression else "", i.code) for i in issues if i.severity in BLOCKING}


def expected(entry: dict) -> set[tuple[str, str]]:
    return {(v["expression"], v["code"]) for v in entry.get("violations", [])}


def shown(issues: list[Issue]) -> str:
    return "\n".join(f"{i.severity} {i.code} {i.diagnostics}" for i in issues)
