"""The validation every write goes through: errors refuse the resource (422), warnings travel with it."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

from adapter.errors import Issue, UnprocessableResourceError
from adapter.validation.loader import load_definitions
from adapter.validation.registry import ProfileRegistry
from adapter.validation.validator import Validator

_BLOCKING = ("error", "fatal")
_lock = threading.Lock()
_validator: Validator | None = None


def configure(sources: Iterable[str | Path] = ()) -> Validator:
    """Build the process-wide validator over the core definitions plus `sources` (profiles, packages)."""
    global _validator
    registry = ProfileRegistry()
    if sources:
        load_definitions(list(sources), registry)
    registry.complete()
    with _lock:
        _validator = Validator(registry)
    return _validator


def validator() -> Validator:
    """The process-wide validator, built on first use (compiling definitions takes a moment)."""
    global _validator
    if _validator is None:
        with _lock:
            if _validator is None:
                _validator = Validator(ProfileRegistry())
    return _validator


def check_for_write(resource: dict) -> list[Issue]:
    """Validate against the base definition and every profile the resource claims.

    Returns the warnings and information issues; raises UnprocessableResourceError naming every error.
    """
    issues = validator().validate(resource)
    errors = [issue for issue in issues if issue.severity in _BLOCKING]
    if errors:
        raise UnprocessableResourceError(errors[0].diagnostics, issues=errors)
    return issues


def is_resource_type(name: str) -> bool:
    return validator().registry.is_known_resource_type(name)
