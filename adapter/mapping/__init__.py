"""The mapping engine: declarative specs in mappings/ turn HL7 v2, CSV, JSON and XML into FHIR Bundles."""

from adapter.mapping.api import MappingRegistry, default_registry, map_source
from adapter.mapping.bundle import ResourceLookup, StoredResource
from adapter.mapping.errors import (
    MappingIssue,
    MappingSpecError,
    SourceFormatError,
    SourceMediaTypeError,
    SourceTooLargeError,
    UnknownMappingError,
)
from adapter.mapping.readers import Limits
from adapter.mapping.result import MappingResult, Rejection

__all__ = [
    "Limits",
    "MappingIssue",
    "MappingRegistry",
    "MappingResult",
    "MappingSpecError",
    "Rejection",
    "ResourceLookup",
    "SourceFormatError",
    "SourceMediaTypeError",
    "SourceTooLargeError",
    "StoredResource",
    "UnknownMappingError",
    "default_registry",
    "map_source",
]
