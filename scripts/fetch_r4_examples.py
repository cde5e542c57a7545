"""Fetch the official FHIR R4 examples of the resource types cart-adapter stores, with their provenance.

Source: the FHIR package `hl7.fhir.r4.examples` 4.0.1 (HL7, CC0-1.0) as published on the npm registry.
The tarball's sha512 is checked against the registry's integrity value; the chosen examples are copied
unchanged into tests/data/r4-examples/ and SOURCE.json records where they came from.

    python scripts/fetch_r4_examples.py [--out tests/data/r4-examples]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import sys
import tarfile
from datetime import date
from pathlib import Path

import requests

PACKAGE, VERSION = "hl7.fhir.r4.examples", "4.0.1"
REGISTRY = "https://registry.npmjs.org"
# The resource types of the CAR-T pathway and what they point to.
TYPES = (
    "Patient",
    "Practitioner",
    "Organization",
    "ServiceRequest",
    "Task",
    "CarePlan",
    "Procedure",
    "MedicationAdministration",
    "Medication",
    "Device",
    "BiologicallyDerivedProduct",
    "Observation",
)


def fetch(out: Path) -> dict:
    meta = requests.get(f"{REGISTRY}/{PACKAGE}/{VERSION}", timeout=30)
    meta.raise_for_status()
    dist = meta.json()["dist"]
    tarball = requests.get(dist["tarball"], timeout=120)
    tarball.raise_for_status()
    algorithm, _, expected = dist["integrity"].partition("-")
    if (
        algorithm != "sha512"
        or base64.b64encode(hashlib.sha512(tarball.content).digest()).decode() != expected
    ):
        raise SystemExit("the tarball does not match the registry's sha512 integrity value")
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.json"):
        old.unlink()
    kept = []
    with tarfile.open(fileobj=io.BytesIO(tarball.content), mode="r:gz") as archive:
        for member in archive.getmembers():
            name = member.name
            if not member.isfile() or not name.startswith("package/") or "/" in name[len("package/") :]:
                continue
            filename = name[len("package/") :]
            if filename.split("-")[0] not in TYPES or not filename.endswith(".json"):
                continue
            data = archive.extractfile(member).read()  # type: ignore[union-attr]
            if json.loads(data).get("resourceType") != filename.split("-")[0]:
                continue
            (out / filename).write_bytes(data)
            kept.append(filename)
    source = {
        "package": PACKAGE,
        "version": VERSION,
        "licence": "CC0-1.0",
        "publisher": "HL7 International",
        "source": dist["tarball"],
        "sha512": dist["integrity"],
        "fetched": date.today().isoformat(),
        "types": list(TYPES),
        "files": len(kept),
    }
    (out / "SOURCE.json").write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")
    return source


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "tests/data/r4-examples"
    )
    args = parser.parse_args(argv)
    source = fetch(args.out)
    print(f"{source['files']} examples of {PACKAGE} {VERSION} written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
