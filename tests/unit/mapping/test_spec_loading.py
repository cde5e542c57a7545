"""Specs are checked against spec.schema.json and compiled once; mistakes are reported at load time."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.mapping import MappingRegistry, SourceMediaTypeError, UnknownMappingError
from adapter.mapping.errors import MappingSpecError
from tests.unit.mapping.conftest import write

CSV_SPEC = """
name: {name}
input: {{format: csv, schema: schemas/tracking-sheet.schema.json}}
let:
  ins: INS
  coi: COI
resources:
  - name: patient
    resourceType: Patient
    identity: {{system: "urn:oid:1.2.250.1.213.1.4.8", value: "${{ins}}"}}
    template:
      gender: female
"""


def test_every_shipped_spec_compiles(registry: MappingRegistry) -> None:
    assert registry.check_all() == {}
    assert set(registry.names()) >= {
        "hl7v2",
        "hl7v2-adt",
        "hl7v2-siu",
        "hl7v2-order",
        "hl7v2-ras",
        "hl7v2-oru",
        "csv-tracking",
        "json-export",
        "xml-reception",
    }


def test_a_spec_is_compiled_once_and_kept(registry: MappingRegistry) -> None:
    assert registry.get("hl7v2-adt") is registry.get("hl7v2-adt")
    assert registry.get("hl7v2").routes[0] is registry.get("hl7v2-adt")


def test_unknown_names_and_path_tricks_are_not_found(registry: MappingRegistry) -> None:
    for name in ("nope", "../spec.schema", "constants", "HL7V2"):
        with pytest.raises(UnknownMappingError):
            registry.get(name)


def test_the_content_type_must_fit_the_format(registry: MappingRegistry) -> None:
    with pytest.raises(SourceMediaTypeError, match="csv"):
        registry.map("csv-tracking", b"{}", "application/json")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.replace("name: broken", "name: other"), "the file 'broken'"),
        (lambda s: s.replace("format: csv", "format: edifact"), "input"),
        (lambda s: s + "unexpected: 1\n", "unexpected"),
        (lambda s: s.replace("ins: INS", "ins: No such column"), "column 'No such column'"),
        (
            lambda s: s.replace("gender: female", "gender: \"${code('v2-sex', nobody)}\""),
            "unknown name 'nobody'",
        ),
        (lambda s: s.replace("gender: female", 'gender: "${nofunc(ins)}"'), "unknown function 'nofunc'"),
        (lambda s: s.replace("gender: female", "subject: \"${ref('ghost')}\""), "unknown resource"),
        (lambda s: s.replace("resourceType: Patient", "resourceType: patient"), "resources"),
        (
            lambda s: s.replace("schema: schemas/tracking-sheet.schema.json", "schema: ../outside.json"),
            "outside",
        ),
    ],
)
def test_broken_specs_fail_at_load_with_a_readable_reason(spec_dir: Path, change, message: str) -> None:
    write(spec_dir, "broken.yaml", change(CSV_SPEC.format(name="broken")))
    with pytest.raises(MappingSpecError, match=message):
        MappingRegistry(spec_dir).get("broken")


def test_a_router_may_not_also_have_resources(spec_dir: Path) -> None:
    write(spec_dir, "router.yaml", "name: router\ninput: {format: hl7v2}\nroutes: [x]\nresources: []\n")
    with pytest.raises(MappingSpecError, match="router.yaml is invalid"):
        MappingRegistry(spec_dir).get("router")


def test_a_router_needs_routes_of_its_format(spec_dir: Path) -> None:
    write(spec_dir, "sheet.yaml", CSV_SPEC.format(name="sheet"))
    write(spec_dir, "router.yaml", "name: router\ninput: {format: hl7v2}\nroutes: [sheet]\n")
    with pytest.raises(MappingSpecError, match="reads csv"):
        MappingRegistry(spec_dir).get("router")


def test_an_override_without_a_fragment_resource_is_refused(spec_dir: Path) -> None:
    write(spec_dir, "lonely.yaml", CSV_SPEC.format(name="lonely") + "  - name: ghost\n    method: upsert\n")
    with pytest.raises(MappingSpecError, match="nothing to override"):
        MappingRegistry(spec_dir).get("lonely")
