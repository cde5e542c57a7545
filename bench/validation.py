"""Validation throughput on one core: full profile validation versus parsing with fhir.resources models."""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

# Run `python -m bench.validation [--rounds N] [--seconds S]`. Both measurements use the same realistic
# CAR-T pathway resources (inline below), in the same process, pinned to one CPU. Rates are resources per
# second of CPU time used by the process (so other load on the machine does not distort them), measured
# in alternating slices; the figures are medians over the rounds, the ratio the median of per-round ratios.

INS_NIR = "urn:oid:1.2.250.1.213.1.4.8"
FINESS = "https://finess.esante.gouv.fr"
RPPS = "urn:oid:1.2.250.1.71.4.2.1"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
LOCAL = "https://cart-adapter.example.org"


def _text(summary: str) -> dict:
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{summary}</p></div>'}


def _coding(system: str, code: str, display: str | None = None) -> dict:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def _quantity(value: Any, unit: str, code: str | None = None) -> dict:
    return {"value": value, "unit": unit, "system": UCUM, "code": code or unit}


def _resources() -> list[dict]:
    patient = {
        "resourceType": "Patient",
        "id": "ins-1",
        "meta": {"versionId": "2", "lastUpdated": "2026-03-01T08:00:00.000+01:00"},
        "text": _text("Hélène Lefèvre, née le 12/03/1975"),
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
                "valueAddress": {"city": "Lyon", "postalCode": "69003", "country": "FR"},
            }
        ],
        "identifier": [
            {
                "use": "official",
                "type": _coding("http://terminology.hl7.org/CodeSystem/v2-0203", "NI"),
                "system": INS_NIR,
                "value": "275036912345697",
            },
            {"use": "usual", "system": f"{LOCAL}/ipp", "value": "IPP-0042"},
        ],
        "active": True,
        "name": [
            {"use": "official", "family": "Lefèvre", "given": ["Hélène", "Marie"]},
            {"use": "maiden", "family": "Durand", "given": ["Hélène"]},
        ],
        "telecom": [
            {"system": "phone", "value": "+33 6 12 34 56 78", "use": "mobile"},
            {"system": "email", "value": "helene.lefevre@example.fr", "use": "home"},
        ],
        "gender": "female",
        "birthDate": "1975-03-12",
        "address": [
            {
                "use": "home",
                "line": ["12 rue des Tanneurs"],
                "city": "Lyon",
                "postalCode": "69003",
                "country": "FR",
                "period": {"start": "2010-06-01"},
            }
        ],
        "contact": [
            {
                "relationship": [_coding("http://terminology.hl7.org/CodeSystem/v2-0131", "N")],
                "name": {"family": "Lefèvre", "given": ["Paul"]},
                "telecom": [{"system": "phone", "value": "+33 6 98 76 54 32"}],
            }
        ],
        "generalPractitioner": [{"reference": "Practitioner/rpps-10101234567"}],
        "managingOrganization": {"reference": "Organization/finess-690781810"},
    }
    organization = {
        "resourceType": "Organization",
        "id": "finess-690781810",
        "text": _text("Hospices Civils de Lyon"),
        "identifier": [{"system": FINESS, "value": "690781810"}],
        "active": True,
        "type": [_coding("http://terminology.hl7.org/CodeSystem/organization-type", "prov")],
        "name": "Hospices Civils de Lyon",
        "telecom": [{"system": "phone", "value": "+33 4 72 11 73 11", "use": "work"}],
        "address": [
            {"line": ["3 quai des Célestins"], "city": "Lyon", "postalCode": "69002", "country": "FR"}
        ],
    }
    practitioner = {
        "resourceType": "Practitioner",
        "id": "rpps-10101234567",
        "text": _text("Dr Antoine Martin, hématologue"),
        "identifier": [{"system": RPPS, "value": "10101234567"}],
        "active": True,
        "name": [{"use": "official", "family": "Martin", "given": ["Antoine"], "prefix": ["Dr"]}],
        "telecom": [{"system": "email", "value": "antoine.martin@chu.example.fr", "use": "work"}],
        "qualification": [{"code": {"text": "Hématologie"}, "period": {"start": "2005-09-01"}}],
    }
    service_request = {
        "resourceType": "ServiceRequest",
        "id": "apheresis-1",
        "text": _text("Leucaphérèse pour fabrication CAR-T"),
        "identifier": [{"system": f"{LOCAL}/order", "value": "ORD-0001"}],
        "status": "active",
        "intent": "order",
        "priority": "urgent",
        "code": _coding(SNOMED, "127788007", "Leukapheresis"),
        "subject": {"reference": "Patient/ins-1"},
        "occurrencePeriod": {"start": "2026-03-10", "end": "2026-03-12"},
        "authoredOn": "2026-03-01T09:00:00+01:00",
        "requester": {"reference": "Practitioner/rpps-10101234567"},
        "performer": [{"reference": "Organization/finess-690781810"}],
        "reasonCode": [{"text": "Lymphome B diffus à grandes cellules en rechute"}],
        "note": [{"text": "Vérifier l'abord veineux.", "time": "2026-03-01T09:05:00+01:00"}],
    }
    task = {
        "resourceType": "Task",
        "id": "order-1",
        "text": _text("Commande de fabrication"),
        "identifier": [{"system": f"{LOCAL}/order", "value": "ORD-0001"}],
        "basedOn": [{"reference": "ServiceRequest/apheresis-1"}],
        "status": "in-progress",
        "businessStatus": _coding(f"{LOCAL}/CodeSystem/order-milestone", "manufacturing"),
        "intent": "order",
        "priority": "urgent",
        "focus": {"reference": "ServiceRequest/apheresis-1"},
        "for": {"reference": "Patient/ins-1"},
        "executionPeriod": {"start": "2026-03-12T08:00:00+01:00"},
        "authoredOn": "2026-03-02T09:30:00+01:00",
        "lastModified": "2026-03-14T17:45:00+01:00",
        "requester": {"reference": "Organization/finess-690781810"},
        "owner": {"reference": "Organization/kite-eu"},
        "input": [{"type": {"text": "lot"}, "valueString": "LOT-2026-0042"}],
        "output": [
            {
                "type": {"text": "product"},
                "valueReference": {"reference": "BiologicallyDerivedProduct/cart-1"},
            }
        ],
    }
    lymphocytes = {
        "resourceType": "Observation",
        "id": "lymphocytes-1",
        "text": _text("Lymphocytes 1,2 G/L"),
        "status": "final",
        "category": [_coding("http://terminology.hl7.org/CodeSystem/observation-category", "laboratory")],
        "code": _coding(LOINC, "731-0", "Lymphocytes [#/volume] in Blood by Automated count"),
        "subject": {"reference": "Patient/ins-1"},
        "effectiveDateTime": "2026-03-09T07:45:00+01:00",
        "issued": "2026-03-09T10:12:00.000+01:00",
        "performer": [{"reference": "Organization/finess-690781810"}],
        "valueQuantity": _quantity(Decimal("1.2"), "10*9/L"),
        "interpretation": [
            _coding("http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "N")
        ],
        "referenceRange": [
            {"low": _quantity(Decimal("1.0"), "10*9/L"), "high": _quantity(Decimal("4.0"), "10*9/L")}
        ],
    }
    blood_pressure = {
        "resourceType": "Observation",
        "id": "bp-1",
        "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/vitalsigns"]},
        "text": _text("PA 118/76 mmHg"),
        "status": "final",
        "category": [_coding("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs")],
        "code": _coding(LOINC, "85354-9", "Blood pressure panel"),
        "subject": {"reference": "Patient/ins-1"},
        "effectiveDateTime": "2026-04-10T09:50:00+02:00",
        "component": [
            {"code": _coding(LOINC, "8480-6"), "valueQuantity": _quantity(118, "mmHg", "mm[Hg]")},
            {"code": _coding(LOINC, "8462-4"), "valueQuantity": _quantity(76, "mmHg", "mm[Hg]")},
        ],
    }
    procedure = {
        "resourceType": "Procedure",
        "id": "apheresis-done-1",
        "text": _text("Leucaphérèse réalisée"),
        "basedOn": [{"reference": "ServiceRequest/apheresis-1"}],
        "status": "completed",
        "code": _coding(SNOMED, "127788007", "Leukapheresis"),
        "subject": {"reference": "Patient/ins-1"},
        "performedPeriod": {"start": "2026-03-11T08:00:00+01:00", "end": "2026-03-11T12:30:00+01:00"},
        "performer": [{"actor": {"reference": "Practitioner/rpps-10101234567"}}],
        "location": {"display": "Unité d'aphérèse"},
        "outcome": {"text": "Collecte conforme"},
        "note": [{"text": "Volume traité 2,5 masses sanguines"}],
    }
    administration = {
        "resourceType": "MedicationAdministration",
        "id": "infusion-1",
        "text": _text("Perfusion CAR-T"),
        "identifier": [{"system": f"{LOCAL}/coi", "value": "COI-FR-69-000042"}],
        "status": "completed",
        "medicationCodeableConcept": _coding(
            "http://www.whocc.no/atc", "L01XL05", "ciltacabtagene autoleucel"
        ),
        "subject": {"reference": "Patient/ins-1"},
        "effectivePeriod": {"start": "2026-04-10T10:02:00+02:00", "end": "2026-04-10T10:31:00+02:00"},
        "performer": [{"actor": {"reference": "Practitioner/rpps-10101234567"}}],
        "dosage": {
            "text": "0,75 × 10⁶ cellules CAR+ viables/kg",
            "route": _coding(SNOMED, "47625008", "Intravenous route"),
            "dose": {"value": 48375000, "unit": "cells"},
            "rateRatio": {"numerator": _quantity(70, "mL"), "denominator": _quantity(30, "min")},
        },
    }
    device = {
        "resourceType": "Device",
        "id": "shipper-1",
        "text": _text("Conteneur cryogénique"),
        "identifier": [{"system": f"{LOCAL}/shipper", "value": "DS-0099"}],
        "status": "active",
        "manufacturer": "Cryo Logistics",
        "serialNumber": "CL-XL-0099",
        "deviceName": [{"name": "Dry shipper XL", "type": "user-friendly-name"}],
        "type": {"text": "Cryogenic dry shipper"},
        "owner": {"reference": "Organization/kite-eu"},
        "note": [{"text": "Enregistreur de température joint", "time": "2026-03-20T10:00:00Z"}],
    }
    product = {
        "resourceType": "BiologicallyDerivedProduct",
        "id": "cart-1",
        "text": _text("Cellules CAR-T autologues"),
        "identifier": [{"system": f"{LOCAL}/coi", "value": "COI-FR-69-000042"}],
        "productCategory": "cells",
        "productCode": {"text": "Autologous anti-BCMA CAR-T cells"},
        "status": "available",
        "request": [{"reference": "ServiceRequest/apheresis-1"}],
        "quantity": 1,
        "collection": {
            "source": {"reference": "Patient/ins-1"},
            "collectedDateTime": "2026-03-11T08:00:00+01:00",
        },
        "processing": [{"description": "Transduction", "timeDateTime": "2026-03-14T12:00:00+01:00"}],
        "storage": [{"description": "Azote liquide, phase vapeur", "temperature": -150, "scale": "celsius"}],
    }
    care_plan = {
        "resourceType": "CarePlan",
        "id": "pathway-1",
        "text": _text("Parcours CAR-T"),
        "status": "active",
        "intent": "plan",
        "title": "Parcours de thérapie CAR-T",
        "subject": {"reference": "Patient/ins-1"},
        "period": {"start": "2026-03-01", "end": "2026-09-01"},
        "author": {"reference": "Practitioner/rpps-10101234567"},
        "activity": [
            {
                "detail": {
                    "kind": "ServiceRequest",
                    "code": {"text": "Leucaphérèse"},
                    "status": "completed",
                    "scheduledPeriod": {"start": "2026-03-10", "end": "2026-03-12"},
                }
            },
            {"reference": {"reference": "ServiceRequest/apheresis-1"}},
        ],
    }
    entries = [patient, lymphocytes, task, administration, product, procedure]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:00000000-0000-4000-8000-{index:012x}",
                "resource": {k: v for k, v in copy.deepcopy(r).items() if k != "id"},
                "request": {"method": "POST", "url": r["resourceType"]},
            }
            for index, r in enumerate(entries)
        ],
    }
    return [
        patient,
        organization,
        practitioner,
        service_request,
        task,
        lymphocytes,
        blood_pressure,
        procedure,
        administration,
        device,
        product,
        care_plan,
        bundle,
    ]


def sample_resources() -> list[dict]:
    """The benchmark's resources (fresh copies): 12 resources of 12 types and one transaction Bundle."""
    return copy.deepcopy(_resources())


def throughput(action: Callable[[dict], Any], resources: list[dict], seconds: float) -> float:
    """Resources per CPU second doing `action` over the resources repeatedly for about `seconds`."""
    done = 0
    started = time.process_time()
    deadline = started + seconds
    while True:
        for resource in resources:
            action(resource)
        done += len(resources)
        now = time.process_time()
        if now >= deadline:
            return done / (now - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="measurement rounds (default 15)")
    parser.add_argument("--seconds", type=float, default=0.5, help="CPU seconds per round and contender")
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the figures claim

    from fhir.resources.R4B import get_fhir_model_class

    from adapter.validation.validator import Validator

    resources = sample_resources()
    started = time.perf_counter()
    validator = Validator()
    problems = [
        (r["resourceType"], i) for r in resources for i in validator.validate(r) if i.severity == "error"
    ]
    cold = time.perf_counter() - started
    if problems:
        for name, issue in problems:
            print(f"unexpected error in the {name} sample: {issue.diagnostics}")
        return 1
    models = {r["resourceType"]: get_fhir_model_class(r["resourceType"]) for r in resources}

    def parse(resource: dict) -> Any:
        return models[resource["resourceType"]].model_validate(resource)

    for resource in resources:
        parse(resource)
    validate_rates, parse_rates = [], []
    for _ in range(args.rounds):
        validate_rates.append(throughput(validator.validate, resources, args.seconds))
        parse_rates.append(throughput(parse, resources, args.seconds))
    validated = statistics.median(validate_rates)
    parsed = statistics.median(parse_rates)
    ratio = statistics.median(v / p for v, p in zip(validate_rates, parse_rates, strict=True))
    print(f"resources: {len(resources)} ({', '.join(sorted({r['resourceType'] for r in resources}))})")
    print(f"first validation incl. compiling definitions: {cold * 1000:.0f} ms")
    print(f"full validation          : {validated:8.0f} resources/s (median of {args.rounds})")
    print(f"fhir.resources R4B parse : {parsed:8.0f} resources/s (median of {args.rounds})")
    print(f"ratio validation / parse : {ratio:8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
