"""The package is a well-formed FHIR NPM package: manifest, canonical urls, file names, index, coverage."""

from __future__ import annotations

import pytest

from adapter.profiles import CANONICAL, COI_SYSTEM
from adapter.validation.registry import ProfileRegistry, canonical_key
from adapter.validation.snapshot import element_ids
from tests.profiles.support import (
    EXAMPLES,
    PACKAGE,
    SD_PREFIX,
    SOURCE,
    example,
    index,
    package_resources,
    read,
)

# Codes of standard terminologies that DOMAIN.md (section 2) or the FHIR R4 core package confirm. Any
# other code of these systems in a definition or a valid example would be an unverified code used as if
# it were standard; unverified concepts belong in the project CodeSystems.
VERIFIED = {
    "http://snomed.info/sct": {"47625008"},
    "http://loinc.org": {"731-0"},
    "http://www.whocc.no/atc": {"L01AA01", "L01BB05", "L01AA09", "L01XL05", "L01XL06", "L01XL12"},
    # Cel: FHIR R4 core ValueSet ucum-bodytemp; the others: DOMAIN.md section 2.
    "http://unitsofmeasure.org": {"mg/m2", "10*3/uL", "Cel"},
    "urn:oid:0.4.0.127.0.16.1.1.2.1": {"20045000"},
}


def test_manifest_declares_an_r4_fhir_ig_package() -> None:
    manifest = read(PACKAGE / "package.json")
    assert manifest["name"] == "fr.cart-adapter.cart"
    assert manifest["type"] == "fhir.ig"
    assert manifest["canonical"] == CANONICAL
    assert manifest["fhirVersions"] == ["4.0.1"]
    assert manifest["dependencies"] == {"hl7.fhir.r4.core": "4.0.1"}
    assert manifest["version"].count(".") == 2


@pytest.mark.parametrize("name", sorted(package_resources()))
def test_every_resource_is_named_and_addressed_under_the_canonical(name: str) -> None:
    resource = package_resources()[name]
    kind, identifier = resource["resourceType"], resource["id"]
    assert name == f"{kind}-{identifier}.json"
    if kind == "NamingSystem":  # R4 NamingSystem has no url: its uniqueId is the system
        assert [u["value"] for u in resource["uniqueId"]] == [f"{CANONICAL}/NamingSystem/{identifier}"]
        return
    assert resource["url"] == f"{CANONICAL}/{kind}/{identifier}"
    assert resource["version"] == read(PACKAGE / "package.json")["version"]
    if kind == "StructureDefinition":
        assert resource["fhirVersion"] == "4.0.1"
        assert resource["derivation"] == "constraint"
        assert resource["differential"]["element"] and resource["snapshot"]["element"]


def test_the_coi_naming_system_is_the_one_the_server_uses() -> None:
    from adapter.config import Settings

    assert COI_SYSTEM in Settings().coi_systems
    assert read(PACKAGE / "NamingSystem-coi.json")["uniqueId"][0]["value"] == COI_SYSTEM


def test_index_lists_every_file() -> None:
    listed = {f["filename"]: f for f in read(PACKAGE / ".index.json")["files"]}
    assert set(listed) == set(package_resources())
    for name, resource in package_resources().items():
        assert listed[name]["resourceType"] == resource["resourceType"]
        assert listed[name]["id"] == resource["id"]
        assert listed[name].get("url") == resource.get("url")


def test_sources_are_differentials_only() -> None:
    for path in sorted(SOURCE.glob("StructureDefinition-*.json")):
        sd = read(path)
        assert "snapshot" not in sd, path.name
        elements = sd["differential"]["element"]
        assert [e["id"] for e in elements] == element_ids(elements), path.name


def test_code_system_counts_match_their_concepts() -> None:
    for resource in package_resources().values():
        if resource["resourceType"] == "CodeSystem":
            assert resource["count"] == len(resource["concept"]), resource["id"]
            assert resource["content"] == "complete"


def test_every_binding_and_profile_reference_resolves(registry: ProfileRegistry) -> None:
    missing = set()
    for resource in package_resources().values():
        if resource["resourceType"] != "StructureDefinition":
            continue
        for element in resource["snapshot"]["element"]:
            binding = element.get("binding") or {}
            if binding.get("valueSet") and registry.value_set(binding["valueSet"]) is None:
                missing.add(binding["valueSet"])
            for type_ref in element.get("type") or ():
                for url in (type_ref.get("profile") or []) + (type_ref.get("targetProfile") or []):
                    if registry.structure(url) is None:
                        missing.add(url)
    for resource in package_resources().values():
        if resource["resourceType"] == "ValueSet":
            for include in resource["compose"]["include"]:
                system = include["system"]
                if system.startswith(CANONICAL):
                    assert registry.code_system(system) is not None, system
    assert missing == set()


def _codings(node: object) -> list[tuple[str, str]]:
    """(system, code) of every Coding, Quantity and ValueSet concept under `node`."""
    found = []
    if isinstance(node, dict):
        if isinstance(node.get("system"), str) and isinstance(node.get("code"), str):
            found.append((node["system"], node["code"]))
        if isinstance(node.get("system"), str) and isinstance(node.get("concept"), list):
            found.extend((node["system"], c["code"]) for c in node["concept"] if "code" in c)
        for value in node.values():
            found.extend(_codings(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_codings(value))
    return found


def test_standard_terminologies_are_used_only_with_verified_codes() -> None:
    sources = list(package_resources().values())
    sources += [example(e) for e in index()["examples"] if e["valid"]]
    sources.append(read(EXAMPLES / "pathway-transaction.json"))
    unverified = {
        (system, code)
        for resource in sources
        for system, code in _codings(resource)
        if system in VERIFIED and code not in VERIFIED[system]
    }
    assert unverified == set()


def test_every_profile_and_extension_has_a_valid_and_an_invalid_example() -> None:
    urls = [r["url"] for r in package_resources().values() if r["resourceType"] == "StructureDefinition"]
    for url in urls:
        covering = [e for e in index()["examples"] if e["profile"] == url or url in e.get("exercises", [])]
        assert any(e["valid"] for e in covering), f"no valid example for {url}"
        assert any(not e["valid"] for e in covering), f"no invalid example for {url}"


def test_every_example_file_is_indexed_once() -> None:
    files = sorted(p.relative_to(EXAMPLES).as_posix() for p in EXAMPLES.glob("*/*.json"))
    listed = [e["file"] for e in index()["examples"]]
    assert sorted(listed) == files
    assert all(e["file"].startswith("valid/" if e["valid"] else "invalid/") for e in index()["examples"])


def test_examples_claim_the_profile_they_are_listed_for() -> None:
    for entry in index()["examples"]:
        resource = example(entry)
        assert resource["meta"]["profile"] == [entry["profile"]], entry["file"]
        assert entry["profile"].startswith(SD_PREFIX)
        if not entry["valid"]:
            assert entry["violations"], f"{entry['file']} does not say which violation it causes"


def test_extensions_are_allowed_where_the_pathway_uses_them() -> None:
    contexts = {
        r["id"]: sorted(c["expression"] for c in r["context"])
        for r in package_resources().values()
        if r["resourceType"] == "StructureDefinition" and r["type"] == "Extension"
    }
    assert contexts == {
        "product-expiry": ["BiologicallyDerivedProduct"],
        "administered-product": ["MedicationAdministration", "Procedure"],
    }
    for resource in package_resources().values():
        if resource["resourceType"] == "StructureDefinition" and resource["type"] == "Extension":
            url_element = next(e for e in resource["snapshot"]["element"] if e["id"] == "Extension.url")
            assert url_element["fixedUri"] == canonical_key(resource["url"])


def test_differentials_follow_the_element_order_of_the_snapshot() -> None:
    # FHIR expects differential elements in snapshot order; tools such as the IG publisher reject others.
    for resource in package_resources().values():
        if resource["resourceType"] != "StructureDefinition":
            continue
        position = {e["id"]: i for i, e in enumerate(resource["snapshot"]["element"])}
        order = [position[e["id"]] for e in resource["differential"]["element"]]
        assert order == sorted(order), resource["id"]
