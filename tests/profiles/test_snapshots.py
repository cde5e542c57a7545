"""Snapshots in profiles/package are the ones the project's generator makes from the differentials."""

from __future__ import annotations

import shutil
from pathlib import Path

from adapter.profiles import PROFILES_DIR
from adapter.profiles.build import build, differences
from adapter.validation.registry import ProfileRegistry
from adapter.validation.snapshot import generate_snapshot
from tests.profiles.support import package_resources, read

REBUILD = "profiles/ is out of date; run `python -m adapter.profiles.build` and commit the result"


def test_generated_package_and_docs_are_up_to_date() -> None:
    assert differences(PROFILES_DIR) == [], REBUILD


def test_every_snapshot_is_regenerated_identically_from_its_differential() -> None:
    # Independent of the build module: the terminology first, then each profile through generate_snapshot.
    resources = package_resources().values()
    registry = ProfileRegistry()
    for resource in resources:
        if resource["resourceType"] in ("CodeSystem", "ValueSet"):
            registry.add(resource)
    for resource in resources:
        if resource["resourceType"] != "StructureDefinition":
            continue
        differential_only = {k: v for k, v in resource.items() if k != "snapshot"}
        regenerated = generate_snapshot(differential_only, registry)
        assert regenerated["snapshot"] == resource["snapshot"], f"{resource['id']}: {REBUILD}"


def test_the_build_is_deterministic() -> None:
    assert build(PROFILES_DIR) == build(PROFILES_DIR)


def test_a_changed_differential_makes_the_snapshot_stale(tmp_path: Path) -> None:
    copy = tmp_path / "profiles"
    for folder in ("source", "package", "docs", "examples"):
        shutil.copytree(PROFILES_DIR / folder, copy / folder)
    source = copy / "source" / "StructureDefinition-cart-order-task.json"
    text = source.read_text(encoding="utf-8")
    sd = read(source)
    owner = next(e for e in sd["differential"]["element"] if e["id"] == "Task.owner")
    assert owner["min"] == 1
    source.write_text(text.replace('"id": "Task.owner",\n', '"id": "Task.owner",\n        "max": "1",\n'))
    found = differences(copy)
    assert "changed: package/StructureDefinition-cart-order-task.json" in found
    stale = copy / "package" / "StructureDefinition-removed.json"
    stale.write_text("{}", encoding="utf-8")
    assert "stale: package/StructureDefinition-removed.json" in differences(copy)
