"""The entry points: a registry that compiles each spec once, and map_source for the ingest endpoint."""

from __future__ import annotations

import re
import threading
from pathlib import Path

from adapter.mapping.bundle import ResourceLookup
from adapter.mapping.compiler import CompiledMapping, compile_mapping
from adapter.mapping.engine import Progress, run_mapping
from adapter.mapping.errors import MappingSpecError, SourceMediaTypeError, UnknownMappingError
from adapter.mapping.readers import Limits, SourceDocument
from adapter.mapping.result import MappingResult
from adapter.mapping.specfiles import default_mappings_dir
from adapter.mapping.tables import TableSet

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_NOT_SPECS = {"constants"}
_ANY_TYPE = {"application/octet-stream", "*/*"}


def parse_content_type(content_type: str | None) -> tuple[str | None, str | None]:
    """('text/csv', 'windows-1252') from 'text/csv; charset=windows-1252'."""
    if not content_type:
        return None, None
    media, *params = (part.strip() for part in content_type.split(";"))
    charset = None
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"') or None
    return media.lower() or None, charset


class MappingRegistry:
    """The specs of one mappings folder; each is compiled on first use and kept (thread-safe)."""

    def __init__(self, mappings_dir: Path | None = None, limits: Limits | None = None):
        self.mappings_dir = (mappings_dir or default_mappings_dir()).resolve()
        self.limits = limits or Limits()
        self.tables = TableSet(self.mappings_dir)
        self._compiled: dict[str, CompiledMapping] = {}
        self._lock = threading.RLock()

    def names(self) -> list[str]:
        """Names of the specs in the folder (top-level YAML/JSON files other than constants)."""
        found = {
            p.stem
            for p in self.mappings_dir.iterdir()
            if p.suffix in (".yaml", ".yml") and p.stem not in _NOT_SPECS and _NAME.fullmatch(p.stem)
        }
        return sorted(found)

    def get(self, name: str) -> CompiledMapping:
        """The compiled spec.

        Raises:
            UnknownMappingError: no spec of that name.
            MappingSpecError: the spec is invalid.
        """
        with self._lock:
            found = self._compiled.get(name)
            if found is not None:
                return found
            path = self._path(name)
            compiled = compile_mapping(path, self.mappings_dir, self.tables, self._route, self.limits)
            self._compiled[name] = compiled
            return compiled

    def _route(self, name: str) -> CompiledMapping:
        return self.get(name)

    def _path(self, name: str) -> Path:
        if not _NAME.fullmatch(name) or name in _NOT_SPECS:
            raise UnknownMappingError(f"no mapping named '{name}'")
        for suffix in (".yaml", ".yml"):
            path = self.mappings_dir / f"{name}{suffix}"
            if path.is_file():
                return path
        raise UnknownMappingError(f"no mapping named '{name}' (known: {', '.join(self.names())})")

    def read(self, name: str, data: bytes, content_type: str | None = None) -> SourceDocument:
        """Only the reader's work: bytes to records (what the benchmark compares mapping against)."""
        mapping = self.get(name)
        media, charset = parse_content_type(content_type)
        if media and media not in _ANY_TYPE and media not in mapping.reader.media_types:
            raise SourceMediaTypeError(
                f"mapping {name} reads {mapping.format} ({', '.join(mapping.reader.media_types)}), "
                f"not {media}"
            )
        return mapping.reader.read(bytes(data), charset)

    def map(
        self,
        name: str,
        data: bytes,
        content_type: str | None = None,
        *,
        lookup: ResourceLookup | None = None,
        progress: Progress | None = None,
    ) -> MappingResult:
        document = self.read(name, data, content_type)
        return run_mapping(self.get(name), document, lookup=lookup, progress=progress)

    def check_all(self) -> dict[str, str]:
        """Compile every spec; the problems found, by spec name (empty when all are valid)."""
        problems = {}
        for name in self.names():
            try:
                self.get(name)
            except MappingSpecError as exc:
                problems[name] = exc.message
        return problems


_default_lock = threading.Lock()
_default: MappingRegistry | None = None


def default_registry() -> MappingRegistry:
    """The registry of the checkout's mappings/ folder, created on first use (not at import)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = MappingRegistry()
        return _default


def map_source(
    mapping_name: str,
    data: bytes,
    content_type: str | None = None,
    *,
    lookup: ResourceLookup | None = None,
    progress: Progress | None = None,
    registry: MappingRegistry | None = None,
) -> MappingResult:
    """Map raw hospital data with a named spec into a transaction Bundle, rejected records and issues.

    Args:
        mapping_name: the spec's name (a file of mappings/, e.g. 'hl7v2-adt').
        data: the source bytes (an HL7 v2 file, a CSV sheet, a JSON or XML export).
        content_type: the request's Content-Type; its charset overrides the reader's detection.
        lookup: current resources by identifier, so pathway CarePlans merge into their stored version.
        progress: called with (records done, total) after each record.
        registry: the specs to use; the checkout's mappings/ by default.

    Raises:
        UnknownMappingError: no such mapping (404).
        SourceMediaTypeError: the content type is not the mapping's format (415).
        SourceTooLargeError: beyond the configured limits (413).
        SourceFormatError: the source as a whole cannot be read (400).
        MappingSpecError: the spec itself is broken (500).
    """
    return (registry or default_registry()).map(
        mapping_name, data, content_type, lookup=lookup, progress=progress
    )
