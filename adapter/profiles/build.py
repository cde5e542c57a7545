"""Build profiles/package and profiles/docs from profiles/source: metadata, snapshots, package index, docs.

Run `python -m adapter.profiles.build` (or `python scripts/build_profiles.py`) after editing a source file;
`--check` only reports what is out of date (exit status 1), which is what the test suite does in memory.

The output is deterministic: the same sources give byte-identical files, so a stale snapshot shows up as a
diff (and a failing test) instead of silently drifting from its differential.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from adapter.profiles import PROFILES_DIR
from adapter.profiles.docs import render_docs
from adapter.validation.compiler import Compiler
from adapter.validation.errors import ProfileLoadError
from adapter.validation.registry import ProfileRegistry
from adapter.validation.snapshot import element_ids, generate_snapshot

FHIR_VERSION = "4.0.1"
# The folders the build owns: everything in them is generated, so files the build no longer makes are stale.
GENERATED = ("package", "docs")
_DEFINITIONS = ("CodeSystem", "ValueSet", "StructureDefinition")
# R4 NamingSystem has no url, version or experimental flag: it only gets the metadata it has.
_NAMING_SYSTEM_STAMP = ("status", "date", "publisher", "jurisdiction")


class BuildError(Exception):
    """The sources cannot be turned into a package (bad JSON, ids, a differential that does not fit)."""


def dump(value: Any) -> str:
    """Canonical JSON text: resourceType first, other keys sorted, two-space indent, final newline."""
    return json.dumps(_ordered(value), indent=2, ensure_ascii=False) + "\n"


def _ordered(value: Any) -> Any:
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (k != "resourceType", k))
        return {k: _ordered(value[k]) for k in keys}
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    return value


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BuildError(f"{path}: {exc}") from None


def load_sources(source_dir: Path) -> tuple[dict, list[dict]]:
    """The package manifest and the source resources, in file name order."""
    manifest = _read(source_dir / "package.json")
    resources = []
    for path in sorted(source_dir.glob("*.json")):
        if path.name == "package.json":
            continue
        resource = _read(path)
        expected = f"{resource.get('resourceType')}-{resource.get('id')}.json"
        if path.name != expected:
            raise BuildError(
                f"{path}: the file of {resource.get('resourceType')}/{resource.get('id')} "
                f"must be named {expected}"
            )
        resources.append(resource)
    return manifest, resources


def _fhir_date(package_date: str) -> str:
    """package.json dates are YYYYMMDDHHmmss (as the IG publisher writes them); resources take YYYY-MM-DD."""
    digits = package_date.replace("-", "")
    if len(digits) < 8 or not digits[:8].isdigit():
        raise BuildError(f"package.json date {package_date!r} is not YYYYMMDD[HHmmss]")
    return f"{digits[:4]}-{digits[4:6]}-{digits[6:8]}"


def stamp(resource: dict, manifest: dict) -> dict:
    """The resource with the package-wide metadata (version, status, date, publisher, jurisdiction)."""
    out = copy.deepcopy(resource)
    values = {
        "version": manifest["version"],
        "status": out.get("status", "draft"),
        "experimental": False,
        "date": _fhir_date(manifest["date"]),
        "publisher": manifest["author"],
        # package.json names it as system#code, e.g. urn:iso:std:iso:3166#FR
        "jurisdiction": [
            {"coding": [{"system": j.partition("#")[0], "code": j.partition("#")[2]}]}
            for j in [manifest["jurisdiction"]]
            if manifest.get("jurisdiction")
        ],
    }
    kind = out["resourceType"]
    names = _NAMING_SYSTEM_STAMP if kind == "NamingSystem" else tuple(values)
    out.update({k: values[k] for k in names if values[k]})
    if kind == "StructureDefinition":
        out["fhirVersion"] = FHIR_VERSION
    return out


def _with_element_ids(sd: dict) -> dict:
    out = copy.deepcopy(sd)
    elements = out.get("differential", {}).get("element") or []
    for element, element_id in zip(elements, element_ids(elements), strict=True):
        if element.get("id") not in (None, element_id):
            raise BuildError(
                f"{sd['url']}: element id {element['id']!r} does not match its path ({element_id})"
            )
        element["id"] = element_id
    out.pop("snapshot", None)
    return out


def build_definitions(resources: list[dict]) -> tuple[list[dict], ProfileRegistry]:
    """The package resources with snapshots generated from their differentials, and a registry of them.

    Every StructureDefinition is also compiled, so a definition the validator cannot use fails the build.
    """
    registry = ProfileRegistry()
    for resource in resources:
        if resource["resourceType"] in ("CodeSystem", "ValueSet"):
            registry.add(resource)
    out: list[dict] = []
    for resource in resources:
        if resource["resourceType"] != "StructureDefinition":
            out.append(resource)
            continue
        try:
            with_snapshot = generate_snapshot(_with_element_ids(resource), registry)
            registry.add(with_snapshot)
        except ProfileLoadError as exc:
            raise BuildError(exc.message) from None
        out.append(with_snapshot)
    registry.complete()
    compiler = Compiler(registry)
    for resource in out:
        if resource["resourceType"] == "StructureDefinition":
            try:
                compiler.structure(resource["url"])
            except ProfileLoadError as exc:
                raise BuildError(exc.message) from None
    return out, registry


def file_name(resource: dict) -> str:
    return f"{resource['resourceType']}-{resource['id']}.json"


def package_index(resources: Iterable[dict]) -> dict:
    """The package's .index.json (index-version 1): what each file holds, for tools that scan packages."""
    files = []
    for resource in resources:
        entry = {
            "filename": file_name(resource),
            "resourceType": resource["resourceType"],
            "id": resource["id"],
        }
        for key in ("url", "version", "kind", "type"):
            if key in resource:
                entry[key] = resource[key]
        files.append(entry)
    return {"index-version": 1, "files": sorted(files, key=lambda f: f["filename"])}


def build(profiles_dir: Path = PROFILES_DIR) -> dict[str, str]:
    """Every generated file as {path relative to profiles_dir: text}."""
    manifest, sources = load_sources(profiles_dir / "source")
    stamped = [stamp(resource, manifest) for resource in sources]
    resources, _ = build_definitions(stamped)
    files = {"package/package.json": dump(manifest), "package/.index.json": dump(package_index(resources))}
    for resource in resources:
        files[f"package/{file_name(resource)}"] = dump(resource)
    examples_index = profiles_dir / "examples" / "index.json"
    examples = _read(examples_index) if examples_index.is_file() else {}
    for name, text in render_docs(manifest, resources, examples).items():
        files[f"docs/{name}"] = text
    return files


def _existing(profiles_dir: Path) -> set[str]:
    found = set()
    for folder in GENERATED:
        root = profiles_dir / folder
        if root.is_dir():
            found.update(p.relative_to(profiles_dir).as_posix() for p in root.rglob("*") if p.is_file())
    return found


def differences(profiles_dir: Path = PROFILES_DIR, files: dict[str, str] | None = None) -> list[str]:
    """What is out of date on disk: `changed: x`, `missing: x` or `stale: x` (no longer generated)."""
    files = build(profiles_dir) if files is None else files
    out = []
    for name, text in sorted(files.items()):
        path = profiles_dir / name
        if not path.is_file():
            out.append(f"missing: {name}")
        elif path.read_text(encoding="utf-8") != text:
            out.append(f"changed: {name}")
    out.extend(f"stale: {name}" for name in sorted(_existing(profiles_dir) - set(files)))
    return out


def write(profiles_dir: Path = PROFILES_DIR) -> list[str]:
    """Bring the generated folders up to date; returns what was done (same form as `differences`)."""
    files = build(profiles_dir)
    done = differences(profiles_dir, files)
    for line in done:
        action, _, name = line.partition(": ")
        path = profiles_dir / name
        if action == "stale":
            path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(files[name], encoding="utf-8")
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=Path, default=PROFILES_DIR, help="the profiles/ folder")
    parser.add_argument("--check", action="store_true", help="report out-of-date files, change nothing")
    args = parser.parse_args(argv)
    try:
        lines = differences(args.profiles) if args.check else write(args.profiles)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    if args.check and lines:
        print("profiles are out of date: run python -m adapter.profiles.build", file=sys.stderr)
        return 1
    if not lines:
        print("profiles are up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
