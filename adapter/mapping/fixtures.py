"""Mapping fixtures: an input file beside the expected result; run them all and show readable diffs."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from adapter.errors import AdapterError
from adapter.fhirio.jsonio import dump_json_pretty, parse_json
from adapter.mapping.api import MappingRegistry

EXPECTED_SUFFIX = ".expected.json"
_CONTENT_TYPES = {
    ".hl7": "x-application/hl7-v2+er7",
    ".csv": "text/csv",
    ".json": "application/json",
    ".xml": "application/xml",
}


@dataclass(frozen=True)
class Fixture:
    mapping: str
    case: str
    input_path: Path
    expected_path: Path

    @property
    def content_type(self) -> str | None:
        return _CONTENT_TYPES.get(self.input_path.suffix)


@dataclass(frozen=True)
class FixtureOutcome:
    fixture: Fixture
    passed: bool
    diff: str = ""


def discover(mappings_dir: Path, name: str | None = None) -> list[Fixture]:
    """Fixtures under mappings/fixtures/<mapping>/: every file but *.expected.json is an input."""
    root = mappings_dir / "fixtures"
    folders = (
        [root / name] if name else sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    )
    found = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.is_file() and not path.name.endswith(EXPECTED_SUFFIX) and not path.name.startswith("."):
                case = path.name[: -len(path.suffix)] if path.suffix else path.name
                found.append(Fixture(folder.name, case, path, folder / f"{case}{EXPECTED_SUFFIX}"))
    return found


def actual_text(fixture: Fixture, registry: MappingRegistry) -> str:
    """The result of mapping the input, as the fixture's expected file stores it.

    A source refused as a whole (too large, unreadable) is a result too: its error is what is expected.
    """
    data = fixture.input_path.read_bytes()
    try:
        result = registry.map(fixture.mapping, data, fixture.content_type)
    except AdapterError as exc:
        if exc.status >= 500:
            raise
        return dump_json_pretty(
            {"mapping": fixture.mapping, "refused": {"status": exc.status, "message": exc.message}}
        )
    return dump_json_pretty(result.to_json())


def run(fixture: Fixture, registry: MappingRegistry) -> FixtureOutcome:
    """Map the fixture's input and compare with its expected file (a unified diff when they differ)."""
    actual = actual_text(fixture, registry)
    if not fixture.expected_path.is_file():
        return FixtureOutcome(
            fixture, False, f"no expected file {fixture.expected_path.name} (run with --update)"
        )
    expected = dump_json_pretty(parse_json(fixture.expected_path.read_bytes(), max_depth=128))
    if actual == expected:
        return FixtureOutcome(fixture, True)
    diff = difflib.unified_diff(
        expected.splitlines(),
        actual.splitlines(),
        fromfile=f"{fixture.mapping}/{fixture.expected_path.name} (expected)",
        tofile=f"{fixture.mapping}/{fixture.input_path.name} (mapped now)",
        lineterm="",
        n=3,
    )
    return FixtureOutcome(fixture, False, "\n".join(diff))


def update(fixture: Fixture, registry: MappingRegistry) -> bool:
    """Write the expected file from the current mapping; True when it changed."""
    actual = actual_text(fixture, registry) + "\n"
    if fixture.expected_path.is_file() and fixture.expected_path.read_text(encoding="utf-8") == actual:
        return False
    fixture.expected_path.write_text(actual, encoding="utf-8")
    return True
