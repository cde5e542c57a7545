"""Builders shared by the validator tests: profiles, value sets and code systems written for the tests."""

from __future__ import annotations

from adapter.errors import Issue

BASE = "http://hl7.org/fhir/StructureDefinition/"
EX = "http://example.org/fhir/"
NARRATIVE = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'}


def errors(issues: list[Issue]) -> list[Issue]:
    return [i for i in issues if i.severity in ("error", "fatal")]


def warnings(issues: list[Issue]) -> list[Issue]:
    return [i for i in issues if i.severity == "warning"]


def where(issues: list[Issue]) -> list[str]:
    """The expressions of the issues, for compact assertions."""
    return [i.expression[0] if i.expression else "" for i in issues]


def profile(
    name: str,
    type_name: str,
    elements: list[dict],
    *,
    base: str | None = None,
    kind: str = "resource",
) -> dict:
    """A differential-only constraint profile on `type_name` (or on the profile `base`)."""
    return {
        "resourceType": "StructureDefinition",
        "url": f"{EX}StructureDefinition/{name}",
        "name": name,
        "status": "active",
        "kind": kind,
        "abstract": False,
        "type": type_name,
        "baseDefinition": base or BASE + type_name,
        "derivation": "constraint",
        "differential": {"element": [{"id": type_name, "path": type_name}, *elements]},
    }


def element(element_id: str, **fields: object) -> dict:
    """A differential element; its path is the id without slice names."""
    path = ".".join(part.partition(":")[0] for part in element_id.split("."))
    out: dict = {"id": element_id, "path": path}
    last = element_id.rsplit(".", 1)[-1]
    if ":" in last:
        out["sliceName"] = last.partition(":")[2]
    out.update(fields)
    return out


def extension_definition(name: str, value_type: str | None, **value_fields: object) -> dict:
    """A simple extension (one value of `value_type`) or, with value_type None, a bare complex shell."""
    elements: list[dict] = [{"id": "Extension", "path": "Extension", "max": "1"}]
    if value_type is not None:
        elements.append({"id": "Extension.extension", "path": "Extension.extension", "max": "0"})
        elements.append(
            {
                "id": "Extension.value[x]",
                "path": "Extension.value[x]",
                "min": 1,
                "type": [{"code": value_type}],
            }
            | value_fields
        )
    return {
        "resourceType": "StructureDefinition",
        "url": f"{EX}StructureDefinition/{name}",
        "name": name,
        "status": "active",
        "kind": "complex-type",
        "abstract": False,
        "context": [{"type": "element", "expression": "Element"}],
        "type": "Extension",
        "baseDefinition": BASE + "Extension",
        "derivation": "constraint",
        "differential": {"element": elements},
    }


def code_system(name: str, concepts: list[dict], **fields: object) -> dict:
    return {
        "resourceType": "CodeSystem",
        "url": f"{EX}CodeSystem/{name}",
        "status": "active",
        "content": "complete",
        "concept": concepts,
    } | fields


def value_set(name: str, include: list[dict], exclude: list[dict] | None = None) -> dict:
    compose: dict = {"include": include}
    if exclude:
        compose["exclude"] = exclude
    return {"resourceType": "ValueSet", "url": f"{EX}ValueSet/{name}", "status": "active", "compose": compose}


def patient(**fields: object) -> dict:
    return {"resourceType": "Patient", "text": NARRATIVE} | fields


def observation(**fields: object) -> dict:
    base = {
        "resourceType": "Observation",
        "text": NARRATIVE,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
    }
    return base | fields
