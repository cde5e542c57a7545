"""Code tables kept in mappings/tables/: a local code to a standard or project Coding, like a ConceptMap."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapter.mapping.errors import MappingSpecError, ValueProblem
from adapter.mapping.specfiles import load_document, schema_validator

_CODING_KEYS = ("system", "version", "code", "display")


@dataclass(frozen=True)
class CodeTable:
    """One loaded table; keys are compared after trimming (and case-folding when the table says so)."""

    name: str
    file: str
    entries: dict[str, dict[str, Any]]
    default: dict[str, Any] | None
    case_insensitive: bool

    def _key(self, key: Any) -> str | None:
        if key is None:
            return None
        text = str(key).strip()
        if not text:
            return None
        return text.casefold() if self.case_insensitive else text

    def has(self, key: Any) -> bool:
        normalised = self._key(key)
        return normalised is not None and normalised in self.entries

    def target(self, key: Any) -> dict[str, Any] | None:
        """The whole target (coding and extra attributes); None for no key.

        Raises:
            ValueProblem: the key is not in the table and the table has no default.
        """
        normalised = self._key(key)
        if normalised is None:
            return None
        found = self.entries.get(normalised)
        if found is not None:
            return found
        if self.default is not None:
            return self.default
        raise ValueProblem(f"code '{str(key).strip()}' is not in code table '{self.name}' ({self.file})")

    def coding(self, key: Any) -> dict[str, Any] | None:
        target = self.target(key)
        if target is None:
            return None
        return {k: target[k] for k in _CODING_KEYS if k in target}

    def attribute(self, key: Any, name: str) -> Any:
        target = self.target(key)
        return None if target is None else target.get(name)


def _entry(table: dict, value: Any) -> dict[str, Any]:
    if isinstance(value, str | int | bool):
        value = {"code": str(value) if not isinstance(value, bool) else ("true" if value else "false")}
    out = dict(value)
    if "system" not in out and table.get("system") and "code" in out:
        out["system"] = table["system"]
    # Coding keys first, in FHIR's order, so the JSON the engine writes is stable and readable.
    ordered = {k: out[k] for k in _CODING_KEYS if k in out}
    ordered.update({k: v for k, v in out.items() if k not in ordered})
    return ordered


def load_table(path: Path, mappings_dir: Path) -> CodeTable:
    """Read, check against mappings/table.schema.json, and index one table file.

    Raises:
        MappingSpecError: unreadable file, schema violation, or two keys that collide.
    """
    document = load_document(path)
    shown = path.relative_to(mappings_dir).as_posix() if path.is_relative_to(mappings_dir) else str(path)
    errors = sorted(schema_validator(mappings_dir, "table.schema.json").iter_errors(document), key=str)
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top)"
        raise MappingSpecError(f"code table {shown} is invalid at {where}: {first.message}")
    if document["name"] != path.stem.removesuffix(".table"):
        raise MappingSpecError(f"code table {shown} is named '{document['name']}', not '{path.stem}'")
    insensitive = bool(document.get("case_insensitive", False))
    entries: dict[str, dict[str, Any]] = {}
    for key, value in document["entries"].items():
        normalised = str(key).strip()
        normalised = normalised.casefold() if insensitive else normalised
        if normalised in entries:
            raise MappingSpecError(f"code table {shown} has the key '{key}' twice")
        entries[normalised] = _entry(document, value)
    default = _entry(document, document["default"]) if "default" in document else None
    return CodeTable(document["name"], shown, entries, default, insensitive)


class TableSet:
    """The tables of one mappings folder, each loaded once, on first use by a spec."""

    def __init__(self, mappings_dir: Path):
        self.mappings_dir = mappings_dir
        self._tables: dict[str, CodeTable] = {}

    def get(self, name: str) -> CodeTable:
        table = self._tables.get(name)
        if table is None:
            path = self._find(name)
            table = self._tables[name] = load_table(path, self.mappings_dir)
        return table

    def _find(self, name: str) -> Path:
        folder = self.mappings_dir / "tables"
        for suffix in (".yaml", ".yml", ".json"):
            path = folder / f"{name}{suffix}"
            if path.is_file():
                return path
        raise MappingSpecError(f"no code table '{name}' in {folder}")
