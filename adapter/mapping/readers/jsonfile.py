"""JSON reader: records taken from an array of the document, each checked against its JSON Schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adapter.errors import InvalidSyntaxError
from adapter.fhirio.jsonio import parse_json
from adapter.mapping.errors import MappingIssue, MappingSpecError, SourceFormatError
from adapter.mapping.readers.base import Accessor, ItemsAccessor, Limits, Record, SourceDocument
from adapter.mapping.readers.jsonpath import compile_jsonpath, compile_pointer
from adapter.mapping.specfiles import schema_validator


def _pointer_token(part: Any) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


class JsonReader:
    """Paths are JSON Pointers ('/patient/ins') or JSONPath ('$.etapes[?(@.type=="APHERESE")]')."""

    format = "json"
    media_types = ("application/json", "text/json")

    def __init__(self, options: dict, limits: Limits, mappings_dir: Path):
        self.limits = limits
        self.records_pointer = options.get("records", "")
        self.records = compile_pointer(self.records_pointer, "input.records")
        if "schema" not in options:
            raise MappingSpecError("a JSON input needs the 'schema' of its records")
        self.validator = schema_validator(mappings_dir, options["schema"])
        self.document_validator = (
            schema_validator(mappings_dir, options["document_schema"])
            if "document_schema" in options
            else None
        )
        self.max_depth = int(options.get("max_depth", 32))

    def read(self, data: bytes, charset: str | None = None) -> SourceDocument:
        self.limits.check_size(data)
        if charset and charset.lower().replace("_", "-") not in ("utf-8", "utf8"):
            raise SourceFormatError(f"JSON must be UTF-8, not {charset}")
        try:
            document = parse_json(data, max_depth=self.max_depth)
        except InvalidSyntaxError as exc:
            raise SourceFormatError(exc.message) from None
        if self.document_validator is not None:
            error = next(iter(sorted(self.document_validator.iter_errors(document), key=str)), None)
            if error is not None:
                where = "/" + "/".join(_pointer_token(p) for p in error.absolute_path)
                raise SourceFormatError(
                    f"the document does not have the expected shape at {where}: {error.message}"
                )
        found = self.records(document)
        if found is None:
            raise SourceFormatError(f"the document has nothing at {self.records_pointer or '(root)'}")
        items = found if isinstance(found, list) else [found]
        self.limits.check_count(len(items), "records")
        base = self.records_pointer if isinstance(found, list) else None
        out = SourceDocument([])
        for index, item in enumerate(items, start=1):
            location = f"{base}/{index - 1}" if base is not None else (self.records_pointer or "/")
            out.records.append(self._record(index, location, item))
        return out

    def _record(self, index: int, location: str, item: Any) -> Record:
        errors = list(self.validator.iter_errors(item))
        if not errors:
            return Record(index, location, data=item)
        issues = []
        for error in sorted(errors, key=lambda e: list(map(str, e.absolute_path))):
            pointer = location.rstrip("/") + "".join("/" + _pointer_token(p) for p in error.absolute_path)
            issues.append(MappingIssue("error", error.message, source=pointer))
        return Record(index, location, data=item, error=issues[0], more_errors=issues[1:])

    def path(self, text: str, where: str, many: bool = False) -> Accessor:
        text = text.strip()
        if text.startswith("$"):
            return compile_jsonpath(text, where)[0]
        return compile_pointer(text, where)

    def items(self, text: str, where: str) -> ItemsAccessor:
        access = self.path(text, where)
        pointer = not text.strip().startswith("$")

        def items(node: Any, location: str) -> list[tuple[str, Any]]:
            found = access(node)
            if found is None:
                return []
            found = found if isinstance(found, list) else [found]
            if pointer:
                return [(f"{location.rstrip('/')}{text.strip()}/{i}", item) for i, item in enumerate(found)]
            return [(f"{location}, {text.strip()} #{i + 1}", item) for i, item in enumerate(found)]

        return items

    def describe(self, text: str) -> str:
        return text.strip()
