"""Shared helpers for the mapping tests: the shipped registry, throwaway specs, a fake store lookup."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from adapter.mapping import MappingRegistry, StoredResource
from adapter.mapping.specfiles import default_mappings_dir

MAPPINGS = default_mappings_dir()


@pytest.fixture(scope="session")
def registry() -> MappingRegistry:
    return MappingRegistry(MAPPINGS)


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    """An empty mappings folder with the schemas (and the shipped tables) to write test specs into."""
    folder = tmp_path / "mappings"
    folder.mkdir()
    for name in ("spec.schema.json", "table.schema.json"):
        shutil.copy(MAPPINGS / name, folder / name)
    shutil.copytree(MAPPINGS / "tables", folder / "tables")
    shutil.copytree(MAPPINGS / "schemas", folder / "schemas")
    return folder


def write(folder: Path, relative: str, text: str) -> Path:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


class FakeLookup:
    """A stand-in for the store: resources by (type, identifier system, value), fed with mapped Bundles."""

    def __init__(self) -> None:
        self.resources: dict[tuple[str, str, str], StoredResource] = {}

    def find(self, resource_type: str, system: str, value: str) -> StoredResource | None:
        return self.resources.get((resource_type, system, value))

    def store(self, bundle: dict) -> None:
        """What the server does with the transaction: upserts replace, conditional creates keep the first."""
        for entry in bundle["entry"]:
            resource = entry["resource"]
            for identifier in resource.get("identifier", []):
                key = (resource["resourceType"], identifier.get("system"), identifier.get("value"))
                found = self.resources.get(key)
                if entry["request"]["method"] == "POST" and found is not None:
                    continue
                version = str(int(found.version_id) + 1) if found and found.version_id else "1"
                self.resources[key] = StoredResource(resource, version)
