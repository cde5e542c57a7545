"""One core-only Validator for the whole session: compiling definitions is the expensive part."""

from __future__ import annotations

import pytest

from adapter.validation.validator import Validator


@pytest.fixture(scope="session")
def core_validator() -> Validator:
    return Validator()
