"""Fixtures of the profile tests: one validator over the CAR-T package for the whole session."""

from __future__ import annotations

import pytest

from adapter.validation.loader import load_definitions
from adapter.validation.registry import ProfileRegistry
from adapter.validation.validator import Validator
from tests.profiles.support import PACKAGE


@pytest.fixture(scope="session")
def registry() -> ProfileRegistry:
    return load_definitions([PACKAGE])


@pytest.fixture(scope="session")
def validator(registry: ProfileRegistry) -> Validator:
    return Validator(registry)
