"""References to resources a record does not build (ref_by_identifier, ref_by_id) and per-item checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapter.mapping import MappingRegistry, StoredResource
from adapter.mapping.errors import MappingSpecError
from adapter.mapping.identity import stable_id
from tests.unit.mapping.conftest import write

SPEC = """
name: refs
input: {format: csv, schema: schemas/tracking-sheet.schema.json}
let:
  coi: COI
  product: Produit
  order:
    expr: >-
      ref_by_identifier('ServiceRequest', 'https://example.org/coi', coi) if product != 'ORDER' else None
  bag: {expr: "ref_by_id('BiologicallyDerivedProduct', 'https://example.org/lot', coi)"}
require:
  - check: "product == 'ORDER' or order"
    message: "no order for this COI"
    source: coi
    target: Task.focus
resources:
  - name: order
    resourceType: ServiceRequest
    when: "product == 'ORDER'"
    identity: {system: "https://example.org/coi", value: "${coi}"}
    template: {status: active, intent: order, code: {text: "${product}"}}
  - name: task
    resourceType: Task
    when: "product != 'ORDER'"
    identity: {system: "https://example.org/task", value: "${coi}"}
    template:
      status: requested
      intent: order
      focus: "${order}"
      input: [{type: {text: bag}, valueReference: "${bag}"}]
"""
HEADER = "INS;Nom de naissance;Prénom;Date de naissance;Sexe;COI;Produit;FINESS site"


def row(coi: str = "COI-1234", product: str = "YESCARTA") -> str:
    return f"275036938312363;LEFÈVRE;Hélène;12/03/1975;F;{coi};{product};690784152"


class Store:
    """A lookup holding some resources by (type, system, value), counting the questions asked."""

    def __init__(self, **found: dict) -> None:
        self.found = {("ServiceRequest", "https://example.org/coi", coi): r for coi, r in found.items()}
        self.asked = 0

    def find(self, resource_type: str, system: str, value: str) -> StoredResource | None:
        self.asked += 1
        found = self.found.get((resource_type, system, value))
        return StoredResource(found, "3") if found else None


@pytest.fixture
def registry(spec_dir: Path) -> MappingRegistry:
    write(spec_dir, "refs.yaml", SPEC)
    return MappingRegistry(spec_dir)


def run(registry: MappingRegistry, *rows: str, lookup: Store | None = None):  # type: ignore[no-untyped-def]
    return registry.map("refs", "\n".join([HEADER, *rows]).encode(), "text/csv", lookup=lookup)


def task(result) -> dict:  # type: ignore[no-untyped-def]
    return next(e["resource"] for e in result.bundle["entry"] if e["resource"]["resourceType"] == "Task")


def test_without_a_lookup_the_server_resolves_a_conditional_reference(registry: MappingRegistry) -> None:
    result = run(registry, row())
    assert task(result)["focus"] == {
        "reference": "ServiceRequest?identifier=https://example.org/coi|COI-1234"
    }


def test_with_a_lookup_the_stored_resource_is_named_by_its_id(registry: MappingRegistry) -> None:
    store = Store(**{"COI-1234": {"resourceType": "ServiceRequest", "id": "sr-1"}})
    result = run(registry, row(), row(), lookup=store)
    assert task(result)["focus"] == {"reference": "ServiceRequest/sr-1"}
    assert store.asked == 1  # one store query per identity and run


def test_with_a_lookup_a_missing_resource_rejects_the_record_with_its_reason(
    registry: MappingRegistry,
) -> None:
    result = run(registry, row(), lookup=Store())
    (rejection,) = result.rejected
    (issue,) = rejection.issues
    assert (issue.message, issue.source, issue.target) == (
        "no order for this COI",
        "line 2, column 'COI'",
        "Task.focus",
    )


def test_a_resource_built_by_an_earlier_record_is_named_by_its_full_url(registry: MappingRegistry) -> None:
    result = run(registry, row(product="ORDER"), row(), lookup=Store())
    assert not result.rejected
    order = next(e for e in result.bundle["entry"] if e["resource"]["resourceType"] == "ServiceRequest")
    assert task(result)["focus"] == {"reference": order["fullUrl"]}


def test_ref_by_id_names_the_deterministic_id_of_a_put_resource(registry: MappingRegistry) -> None:
    bag = task(run(registry, row()))["input"][0]["valueReference"]
    expected = stable_id("BiologicallyDerivedProduct", "https://example.org/lot", "COI-1234")
    assert bag == {"reference": f"BiologicallyDerivedProduct/{expected}"}


@pytest.mark.parametrize(
    ("expression", "error"),
    [
        ("ref_by_identifier('BiologicallyDerivedProduct', 'x', coi)", "use ref_by_id()"),
        ("ref_by_identifier('Nothing', 'x', coi)", "'Nothing', not an R4 type"),
        ("ref_by_identifier(coi, 'x', coi)", "must be a quoted name"),
        ("ref_by_id('Patient', coi)", "takes a resource type, an identifier system and a value"),
    ],
)
def test_reference_forms_are_checked_when_the_spec_is_loaded(
    spec_dir: Path, expression: str, error: str
) -> None:
    write(
        spec_dir,
        "refs.yaml",
        SPEC.replace("ref_by_id('BiologicallyDerivedProduct', 'https://example.org/lot', coi)", expression),
    )
    with pytest.raises(MappingSpecError, match=error):
        MappingRegistry(spec_dir).get("refs")


GROUPS = """
name: doses
input: {format: json, records: /parcours, schema: schemas/pathway-export.schema.json}
let:
  coi: /coi
resources:
  - for_each:
      path: /administrations
      as: adm
      let:
        adm_id: /id
        dose: /dose
      require:
        - check: "dose is not None"
          message: "an administration without a dose"
          source: dose
          target: MedicationAdministration.dosage.dose
    resources:
      - name: administration
        resourceType: MedicationAdministration
        identity: {system: "https://example.org/adm", value: "${coi}-${adm_id}"}
        template: {status: completed, medicationCodeableConcept: {text: x}}
"""


def test_a_for_each_requirement_names_the_item_and_its_field(spec_dir: Path) -> None:
    write(spec_dir, "doses.yaml", GROUPS)
    patient = {
        "ins": "275036938312363",
        "nomNaissance": "X",
        "prenoms": ["Y"],
        "dateNaissance": "1975",
        "sexe": "F",
    }
    record = {
        "coi": "COI-1234",
        "patient": patient,
        "site": {"finess": "690784152"},
        "produit": {"code": "P"},
    }
    given = {"id": "A1", "medicament": "CYCLO", "debut": "2025-05-05", "dose": 500}
    missing = {"id": "A2", "medicament": "CYCLO", "debut": "2025-05-06"}
    data = json.dumps(
        {
            "parcours": [
                {**record, "administrations": [given]},
                {**record, "administrations": [given, missing]},
            ]
        }
    )
    result = MappingRegistry(spec_dir).map("doses", data.encode())
    assert result.mapped == 1
    (issue,) = result.rejected[0].issues
    assert issue.source == "/parcours/1/administrations/1, /dose"
    assert (issue.message, issue.target) == (
        "an administration without a dose",
        "MedicationAdministration.dosage.dose",
    )
