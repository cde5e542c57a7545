"""CSV reader for spreadsheets such as the cell-therapy unit's tracking sheet (';', UTF-8 or cp1252).

Every row is checked against the JSON Schema of the sheet's shape before mapping; a row that breaks it
is rejected alone, naming its line and column, and the other rows go on.
"""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path
from typing import Any

from adapter.mapping.errors import MappingIssue, MappingSpecError, SourceFormatError, SourceTooLargeError
from adapter.mapping.readers.base import Accessor, ItemsAccessor, Limits, Record, SourceDocument, text_codec
from adapter.mapping.specfiles import schema_validator


def column_letter(index: int) -> str:
    """Spreadsheet letter of a 0-based column index: 0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def decode_text(data: bytes, charset: str | None, issues: list[MappingIssue]) -> str:
    """UTF-8 (BOM optional) unless a charset is given; else Windows-1252, reported as a warning.

    Raises:
        SourceMediaTypeError: the charset is not a character set.
        SourceFormatError: the bytes are not in the given charset.
    """
    if charset:
        charset = text_codec(charset)
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
        charset = charset or "utf-8"
    if charset:
        try:
            return data.decode(charset)
        # UnicodeError, not only UnicodeDecodeError: idna and punycode raise the base class.
        except UnicodeError as exc:
            raise SourceFormatError(f"the source is not valid {charset}: {exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        issues.append(
            MappingIssue(
                "warning", f"not valid UTF-8 (byte {exc.start}); decoded as Windows-1252 (cp1252) instead"
            )
        )
        return data.decode("cp1252", errors="replace")


class CsvReader:
    """Reads a header row then data rows; a path is a column header, exactly as written in the sheet."""

    format = "csv"
    media_types = ("text/csv", "application/csv", "text/plain")

    def __init__(self, options: dict, limits: Limits, mappings_dir: Path):
        self.limits = limits
        self.delimiter = options.get("delimiter", ";")
        self.quote = options.get("quote", '"')
        if "schema" not in options:
            raise MappingSpecError("a CSV input needs the 'schema' of its rows")
        self.validator = schema_validator(mappings_dir, options["schema"])
        schema = self.validator.schema
        self.columns: set[str] = set(schema.get("properties", {}))
        self.descriptions = {
            name: self._description(prop, schema) for name, prop in schema.get("properties", {}).items()
        }
        self.required: list[str] = list(schema.get("required", []))

    @staticmethod
    def _description(prop: dict, schema: dict) -> str | None:
        if "description" in prop:
            return prop["description"]
        if "enum" in prop:
            return "one of " + ", ".join(map(str, prop["enum"]))
        ref = prop.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return schema.get("$defs", {}).get(ref[8:], {}).get("description")
        return None

    def read(self, data: bytes, charset: str | None = None) -> SourceDocument:
        self.limits.check_size(data)
        document = SourceDocument([])
        text = decode_text(data, charset, document.issues)
        rows = csv.reader(io.StringIO(text, newline=""), delimiter=self.delimiter, quotechar=self.quote)
        header: list[str] | None = None
        last_line = 0
        count = 0
        try:
            for cells in rows:
                first_line, last_line = last_line + 1, rows.line_num
                if not any(c.strip() for c in cells):
                    continue
                if header is None:
                    header = self._header(cells, document)
                    continue
                count += 1
                if count > self.limits.max_records:
                    raise SourceTooLargeError(f"the source has more than {self.limits.max_records} rows")
                document.records.append(self._record(count, first_line, header, cells))
        except csv.Error as exc:
            raise SourceFormatError(f"CSV syntax error at line {rows.line_num}: {exc}") from None
        if header is None:
            raise SourceFormatError("the CSV source is empty (no header row)")
        return document

    def _header(self, cells: list[str], document: SourceDocument) -> list[str]:
        header = [c.strip() for c in cells]
        seen: set[str] = set()
        for name in header:
            if name and name in seen:
                raise SourceFormatError(f"the header has the column '{name}' twice")
            seen.add(name)
        missing = [c for c in self.required if c not in seen]
        if missing:
            raise SourceFormatError(
                f"the header lacks the column(s) {', '.join(repr(m) for m in missing)}; "
                f"check the separator ('{self.delimiter}') and the column names"
            )
        unknown = [name for name in header if name and self.columns and name not in self.columns]
        if unknown:
            document.issues.append(
                MappingIssue(
                    "warning",
                    f"column(s) not in the sheet's schema, ignored: {', '.join(unknown)}",
                    source="line 1",
                )
            )
        return header

    def _record(self, index: int, line: int, header: list[str], cells: list[str]) -> Record:
        location = f"line {line}"
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header) :]):
            return Record(
                index,
                location,
                error=MappingIssue(
                    "error",
                    f"the row has {len(cells)} cells but the header has {len(header)} columns "
                    f"(a '{self.delimiter}' inside a value must be quoted)",
                    source=location,
                ),
            )
        if sum(len(c) for c in cells) > self.limits.max_record_bytes:
            return Record(
                index,
                location,
                error=MappingIssue(
                    "error",
                    f"the row is longer than the limit of {self.limits.max_record_bytes} characters",
                    source=location,
                ),
            )
        known = self.columns
        row = {
            name: cell.strip()
            for name, cell in zip(header, cells, strict=False)
            if name and cell.strip() and (not known or name in known)
        }
        problems = [self._problem(error, header, location, row) for error in self.validator.iter_errors(row)]
        if problems:
            return Record(index, location, data=row, error=problems[0], more_errors=problems[1:])
        return Record(index, location, data=row)

    def _problem(self, error: Any, header: list[str], location: str, row: dict) -> MappingIssue:
        if error.validator == "required":
            column = next((c for c in self.required if c not in row), None)
        else:
            column = str(error.absolute_path[0]) if error.absolute_path else None
        if column is None:
            return MappingIssue("error", error.message, source=location)
        letter = f" ({column_letter(header.index(column))})" if column in header else ""
        value = row.get(column)
        expected = self.descriptions.get(column)
        message = error.message if value is None else f"value '{value}' does not match the sheet's format"
        if expected and value is not None:
            message += f" (expected: {expected})"
        if error.validator == "required":
            message = "a value is required"
        return MappingIssue("error", message, source=f"{location}, column '{column}'{letter}")

    def path(self, text: str, where: str, many: bool = False) -> Accessor:
        name = text.strip()
        if self.columns and name not in self.columns:
            raise MappingSpecError(f"{where}: column '{name}' is not in the sheet's schema")
        return lambda row: row.get(name)

    def items(self, text: str, where: str) -> ItemsAccessor:
        raise MappingSpecError(f"{where}: CSV rows have no repeated items to iterate over")

    def describe(self, text: str) -> str:
        return f"column '{text.strip()}'"
