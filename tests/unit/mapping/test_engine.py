"""The engine: conditions, required values, groups, and one bad record never stopping the others."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.mapping import MappingRegistry
from tests.unit.mapping.conftest import write

SPEC = """
name: sheet
input: {format: csv, schema: schemas/tracking-sheet.schema.json}
let:
  ins: INS
  coi: {path: COI, required: "no COI"}
  product: Produit
  infused: {path: Date perfusion, type: datetime}
  lymphocytes: {path: Lymphocytes (G/L), type: decimal}
  comment: {path: Commentaire, default: "(aucun)"}
require:
  - check: "product != 'INTERDIT'"
    message: "this product may not be mapped"
    source: product
    target: MedicationAdministration.medicationCodeableConcept
resources:
  - name: patient
    resourceType: Patient
    method: ensure
    identity: {system: "urn:oid:1.2.250.1.213.1.4.8", value: "${ins}"}
  - name: infusion
    resourceType: MedicationAdministration
    when: infused
    identity: {system: "https://example.org/adm", value: "${coi}"}
    template:
      status: completed
      medicationCodeableConcept: {coding: ["${lookup('product', product)}"]}
      subject: "${ref('patient')}"
      effectiveDateTime: "${infused}"
      note: [{text: "${comment}"}]
  - name: count
    resourceType: Observation
    when: "lymphocytes is not None"
    identity: {system: "https://example.org/obs", value: "${coi}"}
    template:
      status: final
      code: {text: lymphocytes}
      valueQuantity: "${quantity(lymphocytes, '10*3/uL')}"
"""
HEADER = (
    "INS;Nom de naissance;Prénom;Date de naissance;Sexe;COI;Produit;FINESS site;"
    "Date perfusion;Lymphocytes (G/L)"
)


def row(coi: str = "COI-1234", product: str = "YESCARTA", infused: str = "", lymphocytes: str = "") -> str:
    return f"275036938312363;LEFÈVRE;Hélène;12/03/1975;F;{coi};{product};690784152;{infused};{lymphocytes}"


@pytest.fixture
def registry(spec_dir: Path) -> MappingRegistry:
    write(spec_dir, "sheet.yaml", SPEC)
    return MappingRegistry(spec_dir)


def run(registry: MappingRegistry, *rows: str):
    return registry.map("sheet", "\n".join([HEADER, *rows]).encode(), "text/csv")


def kinds(result) -> list[str]:
    return [e["resource"]["resourceType"] for e in result.bundle["entry"]]


def test_when_leaves_out_resources_without_their_data(registry: MappingRegistry) -> None:
    assert kinds(run(registry, row())) == ["Patient"]
    assert kinds(run(registry, row(infused="10/05/2025 10:02", lymphocytes="0,85"))) == [
        "Patient",
        "MedicationAdministration",
        "Observation",
    ]


def test_defaults_fill_missing_values(registry: MappingRegistry) -> None:
    result = run(registry, row(infused="10/05/2025"))
    assert result.bundle["entry"][1]["resource"]["note"] == [{"text": "(aucun)"}]


def test_a_failed_requirement_rejects_the_record_with_source_and_target(registry: MappingRegistry) -> None:
    result = run(registry, row(product="INTERDIT"), row(coi="COI-5678"))
    assert result.mapped == 1
    (issue,) = result.rejected[0].issues
    assert issue.message == "this product may not be mapped"
    assert issue.source == "line 2, column 'Produit'"
    assert issue.target == "MedicationAdministration.medicationCodeableConcept"


def test_one_bad_row_is_rejected_and_the_others_go_through(registry: MappingRegistry) -> None:
    result = run(
        registry,
        row(coi="COI-0001", infused="10/05/2025 10:02"),
        row(coi="COI-0002", infused="31/02/2025 10:02"),
        row(coi="COI-0003", product="INCONNU", infused="10/05/2025"),
        row(coi="COI-0004", lymphocytes="0,85"),
    )
    assert (result.records, result.mapped) == (4, 2)
    bad_date, bad_code = result.rejected
    assert bad_date.location == "line 3"
    assert bad_date.issues[0].source == "line 3, column 'Date perfusion'"
    assert bad_date.issues[0].target == "MedicationAdministration.effectiveDateTime"
    assert "not in code table 'product'" in bad_code.issues[0].message
    assert bad_code.issues[0].target == "MedicationAdministration.medicationCodeableConcept.coding[0]"
    identifiers = [e["resource"]["identifier"][0]["value"] for e in result.bundle["entry"][1:]]
    assert identifiers == ["COI-0001", "COI-0004"]
    outcome = result.outcome_issues()
    assert outcome[0].expression == ("MedicationAdministration.effectiveDateTime",)


def test_the_summary_counts_and_explains(registry: MappingRegistry) -> None:
    summary = run(registry, row(), row(product="INTERDIT")).summary()
    assert summary.splitlines()[0] == "mapping sheet: 2 record(s), 1 mapped, 1 rejected -> 1 Patient"
    assert "rejected line 3: this product may not be mapped" in summary


def test_groups_iterate_items_with_their_own_values(spec_dir: Path) -> None:
    write(spec_dir, "schemas/any.json", '{"type": "object"}')
    write(
        spec_dir,
        "items.yaml",
        """
        name: items
        input: {format: json, records: /rows, schema: schemas/any.json}
        let: {key: /key}
        resources:
          - name: parent
            resourceType: Patient
            identity: {system: "https://example.org/p", value: "${key}"}
          - for_each:
              path: /items
              as: item
              let: {code: /code, value: {path: /value, type: decimal}}
              when: "code != 'skip'"
            resources:
              - name: child
                resourceType: Observation
                identity: {system: "https://example.org/o", value: "${key}-${code}"}
                template:
                  status: final
                  code: {text: "${code}"}
                  subject: "${ref('parent')}"
                  valueQuantity: {value: "${value}"}
        """,
    )
    items = b'[{"code": "a", "value": 1.5}, {"code": "skip"}, {"code": "b", "value": "x"}]'
    data = b'{"rows": [{"key": "k", "items": ' + items + b"}]}"
    result = MappingRegistry(spec_dir).map("items", data)
    (rejection,) = result.rejected
    assert rejection.issues[0].source == "/rows/0/items/2, /value"
    result = MappingRegistry(spec_dir).map("items", data.replace(b'"x"', b"2"))
    entries = result.bundle["entry"]
    assert [e["resource"]["code"]["text"] for e in entries[1:]] == ["a", "b"]
    assert entries[1]["resource"]["subject"] == {"reference": entries[0]["fullUrl"]}
