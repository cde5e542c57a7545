"""Loading extra definitions: folders, FHIR NPM package folders or .tgz files, single JSON/XML files."""

from __future__ import annotations

import io
import json
import posixpath
import tarfile
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from adapter.errors import AdapterError
from adapter.validation.errors import INVALID, NOT_FOUND, ProfileLoadError
from adapter.validation.registry import ProfileRegistry

# A package member larger than this is not a conformance resource we could use.
MAX_MEMBER_BYTES = 64 * 1024 * 1024
MAX_PACKAGE_BYTES = 512 * 1024 * 1024
_SKIPPED_NAMES = {"package.json", ".index.json"}


def _parse(data: bytes, source: str) -> Any:
    if source.endswith(".xml"):
        from adapter.fhirio.xml import parse_xml

        try:
            return parse_xml(data)
        except AdapterError as exc:
            raise ProfileLoadError(
                f"{source}: not a FHIR XML resource ({exc.message})", source=source
            ) from None
    try:
        return json.loads(data.decode("utf-8-sig"), parse_float=Decimal)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProfileLoadError(f"{source}: not valid JSON ({exc})", source=source) from None


def _add(registry: ProfileRegistry, resource: Any, source: str) -> int:
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        return 0  # package indexes, examples in other shapes: not definitions
    try:
        return 1 if registry.add(resource) else 0
    except ProfileLoadError as exc:
        raise ProfileLoadError(f"{source}: {exc.message}", code=exc.code, source=source) from None


def _safe_name(name: str) -> str:
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ProfileLoadError(f"absolute path in package: {name!r}")
    normalised = posixpath.normpath(name.replace("\\", "/"))
    if normalised == ".." or normalised.startswith("../"):
        raise ProfileLoadError(f"path escaping the package: {name!r}")
    return normalised


def read_package_tgz(data: bytes, source: str = "package") -> Iterator[tuple[str, Any]]:
    """(member name, parsed resource) for each package/*.json of a FHIR NPM package, read in memory."""
    try:
        archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
    except (tarfile.TarError, OSError) as exc:
        raise ProfileLoadError(f"{source}: not a readable package archive ({exc})", source=source) from None
    with archive:
        try:
            members = archive.getmembers()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ProfileLoadError(f"{source}: damaged package archive ({exc})", source=source) from None
        for member in members:
            name = _safe_name(member.name)
            if member.issym() or member.islnk() or member.isdev():
                raise ProfileLoadError(f"{source}: link or device in package: {member.name!r}", source=source)
            if not member.isfile():
                continue
            folder, base = posixpath.split(name)
            if folder != "package" or base in _SKIPPED_NAMES or not base.endswith((".json", ".xml")):
                continue
            if member.size > MAX_MEMBER_BYTES:
                raise ProfileLoadError(f"{source}: member too large: {member.name!r}", source=source)
            handle = archive.extractfile(member)
            if handle is not None:
                yield name, _parse(handle.read(), f"{source}:{name}")


def _files(folder: Path) -> Iterable[Path]:
    package = folder / "package"
    if (package / "package.json").is_file():
        # An unpacked NPM package: the definitions are the files directly in package/.
        return sorted(p for p in package.iterdir() if p.is_file())
    return sorted(p for p in folder.rglob("*") if p.is_file())


def load_source(source: str | Path, registry: ProfileRegistry) -> int:
    """Add the definitions found at `source` to `registry`; returns how many were added.

    Raises ProfileLoadError (code not-found or invalid) for anything that cannot be read or used.
    """
    path = Path(source)
    shown = str(source)
    if not path.exists():
        raise ProfileLoadError(f"{shown}: no such file or folder", code=NOT_FOUND, source=shown)
    count = 0
    if path.is_dir():
        for file in _files(path):
            if file.name in _SKIPPED_NAMES or file.suffix not in (".json", ".xml"):
                if file.name.endswith((".tgz", ".tar.gz")):
                    count += load_source(file, registry)
                continue
            count += _add(registry, _parse(file.read_bytes(), str(file)), str(file))
        return count
    if path.name.endswith((".tgz", ".tar.gz")):
        if path.stat().st_size > MAX_PACKAGE_BYTES:
            raise ProfileLoadError(f"{shown}: package too large", source=shown)
        for name, resource in read_package_tgz(path.read_bytes(), shown):
            count += _add(registry, resource, f"{shown}:{name}")
        return count
    if path.suffix in (".json", ".xml"):
        return _add(registry, _parse(path.read_bytes(), shown), shown)
    raise ProfileLoadError(f"{shown}: not a .json, .xml, .tgz file or a folder", code=INVALID, source=shown)


def load_definitions(
    sources: Iterable[str | Path], registry: ProfileRegistry | None = None
) -> ProfileRegistry:
    """A registry (the core definitions plus everything at `sources`), with every snapshot generated."""
    registry = registry if registry is not None else ProfileRegistry()
    for source in sources:
        load_source(source, registry)
    registry.complete()
    return registry


__all__ = ["load_definitions", "load_source", "read_package_tgz"]
