"""Source readers (HL7 v2 ER7, CSV, JSON, XML), chosen by a spec's input format."""

from __future__ import annotations

from pathlib import Path

from adapter.mapping.errors import MappingSpecError
from adapter.mapping.readers.base import Limits, Reader, Record, SourceDocument
from adapter.mapping.readers.csvfile import CsvReader
from adapter.mapping.readers.hl7v2 import Hl7v2Reader
from adapter.mapping.readers.jsonfile import JsonReader
from adapter.mapping.readers.xmlfile import XmlReader

FORMATS = ("hl7v2", "csv", "json", "xml")

__all__ = ["FORMATS", "Limits", "Reader", "Record", "SourceDocument", "make_reader"]


def make_reader(fmt: str, options: dict, limits: Limits, mappings_dir: Path) -> Reader:
    """The reader for a spec's `input` block.

    Raises:
        MappingSpecError: unknown format, or options the format needs are missing.
    """
    if fmt == "hl7v2":
        return Hl7v2Reader(options, limits)
    if fmt == "csv":
        return CsvReader(options, limits, mappings_dir)
    if fmt == "json":
        return JsonReader(options, limits, mappings_dir)
    if fmt == "xml":
        return XmlReader(options, limits)
    raise MappingSpecError(f"unknown input format '{fmt}' (expected one of {', '.join(FORMATS)})")
