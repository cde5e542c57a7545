"""A realistic 20-entry FHIR R4 transaction Bundle of one French CAR-T pathway, fresh identifiers per call.

The Bundle is built from three per-call strings (a decimal tag, a hex tag, the patient's INS), so that the
same text with placeholders can serve as a template for wrk's Lua script: the load generator then sends
distinct Bundles without a Python process generating them during the measurement.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

INS_NIR = "urn:oid:1.2.250.1.213.1.4.8"
FINESS = "https://finess.esante.gouv.fr"
RPPS = "urn:oid:1.2.250.1.71.4.2.1"
ATC = "http://www.whocc.no/atc"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
EDQM_ROUTE = "http://standardterms.edqm.eu"
LOCAL = "https://cart-adapter.example.org"
MILESTONES = f"{LOCAL}/CodeSystem/order-milestone"

# Placeholders of the text template; each is replaced by a value of the same role for one Bundle.
TAG_SLOT = "@@TAG@@"  # 8 decimal digits
HEX_SLOT = "@@HEX@@"  # 12 hex digits, the last group of every urn:uuid fullUrl
INS_SLOT = "@@INS@@"  # 15 digits: NIR (13) and its key (2)
# The NIR's first seven digits (sex, year, month, department); the tag supplies the other six.
NIR_PREFIX = "2750369"

ENTRY_COUNT = 20
_sequence = itertools.count(1)


def ins_for(seq: int) -> str:
    """A well-formed INS-NIR for sequence number `seq`: 13 digits and the key 97 - (NIR mod 97)."""
    nir = f"{NIR_PREFIX}{seq % 1_000_000:06d}"
    return f"{nir}{97 - int(nir) % 97:02d}"


def pathway_bundle(seq: int | None = None) -> dict[str, Any]:
    """One pathway as a transaction Bundle, made unique by `seq` (default: a process-wide counter)."""
    seq = next(_sequence) if seq is None else seq
    return _build(f"{seq % 100_000_000:08d}", f"{seq % 16**12:012x}", ins_for(seq))


def bundle_template() -> str:
    """The Bundle as compact JSON text with TAG_SLOT, HEX_SLOT and INS_SLOT in place of per-Bundle values."""
    return json.dumps(_build(TAG_SLOT, HEX_SLOT, INS_SLOT), ensure_ascii=False, separators=(",", ":"))


def fill_template(template: str, seq: int) -> str:
    """What the Lua script does to the template, in Python (tests compare the two)."""
    return (
        template.replace(TAG_SLOT, f"{seq % 100_000_000:08d}")
        .replace(HEX_SLOT, f"{seq % 16**12:012x}")
        .replace(INS_SLOT, ins_for(seq))
    )


def _ref(urls: dict[str, str], key: str, display: str | None = None) -> dict[str, str]:
    out = {"reference": urls[key]}
    if display:
        out["display"] = display
    return out


def _coding(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _quantity(value: float | int, code: str, unit: str | None = None) -> dict[str, Any]:
    return {"value": value, "unit": unit or code, "system": UCUM, "code": code}


def _build(tag: str, hex_tag: str, ins: str) -> dict[str, Any]:
    keys = [
        "patient",
        "hospital",
        "manufacturer",
        "hematologist",
        "order",
        "task",
        "careplan",
        "apheresis",
        "infusion",
        "cyclophosphamide",
        "fludarabine",
        "cart_admin",
        "cart_product",
        "shipper",
        "apheresis_machine",
        "starting_material",
        "finished_product",
        "shipper_temperature",
        "alc_baseline",
        "alc_day0",
    ]
    urls = {key: f"urn:uuid:{i + 1:08x}-ca27-4a00-8000-{hex_tag}" for i, key in enumerate(keys)}
    order_id = f"CART-ORD-{tag}"
    din = f"FR-HCL-{tag}"  # ISBT 128-like donation identification of the apheresis product
    batch = f"JNJ-CLT-{tag}"
    patient_ref = _ref(urls, "patient", "Hélène Lefèvre")
    hcl = _ref(urls, "hospital", "Hospices Civils de Lyon")
    mfr = _ref(urls, "manufacturer", "Janssen-Cilag")
    doctor = _ref(urls, "hematologist", "Dr Antoine Moreau")

    resources: dict[str, dict[str, Any]] = {
        "patient": {
            "resourceType": "Patient",
            "identifier": [
                {
                    "use": "official",
                    "type": {
                        "coding": [
                            {
                                "system": "urn:oid:1.2.250.1.213.1.1.4.2",
                                "code": "INS-NIR",
                                "display": "NIR définitif",
                            }
                        ]
                    },
                    "system": INS_NIR,
                    "value": ins,
                }
            ],
            "name": [{"use": "official", "family": "Lefèvre", "given": ["Hélène", "Marie"]}],
            "gender": "female",
            "birthDate": "1975-03-12",
            "address": [
                {"line": ["12 rue des Tanneurs"], "city": "Lyon", "postalCode": "69003", "country": "FR"}
            ],
            "managingOrganization": hcl,
        },
        "hospital": {
            "resourceType": "Organization",
            "identifier": [{"system": FINESS, "value": "690781810"}],
            "active": True,
            "type": [
                _coding(
                    "http://terminology.hl7.org/CodeSystem/organization-type", "prov", "Healthcare Provider"
                )
            ],
            "name": "Hospices Civils de Lyon",
            "address": [
                {"line": ["3 quai des Célestins"], "city": "Lyon", "postalCode": "69002", "country": "FR"}
            ],
        },
        "manufacturer": {
            "resourceType": "Organization",
            "identifier": [{"system": f"{LOCAL}/manufacturer", "value": "janssen-cilag-fr"}],
            "active": True,
            "type": [
                _coding(
                    "http://terminology.hl7.org/CodeSystem/organization-type",
                    "bus",
                    "Non-Healthcare Business or Corporation",
                )
            ],
            "name": "Janssen-Cilag",
            "telecom": [{"system": "email", "value": "cart-orders@example.org", "use": "work"}],
        },
        "hematologist": {
            "resourceType": "Practitioner",
            "identifier": [
                {
                    "type": {
                        "coding": [{"system": "http://interopsante.org/CodeSystem/v2-0203", "code": "IDNPS"}]
                    },
                    "system": RPPS,
                    "value": f"8100{tag}",
                }
            ],
            "active": True,
            "name": [{"use": "official", "family": "Moreau", "given": ["Antoine"], "prefix": ["Dr"]}],
            "qualification": [{"code": _coding("urn:oid:1.2.250.1.213.1.1.5.5", "SM16", "Hématologie")}],
        },
        "order": {
            "resourceType": "ServiceRequest",
            "identifier": [{"system": f"{LOCAL}/order", "value": order_id}],
            "status": "active",
            "intent": "order",
            "category": [_coding(f"{LOCAL}/CodeSystem/request-category", "cart-order", "CAR-T cell order")],
            "code": _coding(ATC, "L01XL05", "ciltacabtagene autoleucel"),
            "subject": patient_ref,
            "authoredOn": "2026-03-02T09:30:00+01:00",
            "requester": doctor,
            "performer": [mfr],
            "reasonCode": [{"text": "Myélome multiple en rechute, réfractaire (3 lignes antérieures)"}],
        },
        "task": {
            "resourceType": "Task",
            "identifier": [{"system": f"{LOCAL}/order", "value": order_id}],
            "status": "in-progress",
            "intent": "order",
            "businessStatus": _coding(MILESTONES, "infused", "Product infused"),
            "focus": _ref(urls, "order"),
            "for": patient_ref,
            "authoredOn": "2026-03-02T09:30:00+01:00",
            "lastModified": "2026-04-13T11:05:00+02:00",
            "requester": hcl,
            "owner": mfr,
            "output": [
                {"type": {"text": "finished product"}, "valueReference": _ref(urls, "finished_product")}
            ],
        },
        "careplan": {
            "resourceType": "CarePlan",
            "identifier": [{"system": f"{LOCAL}/careplan", "value": f"CP-{tag}"}],
            "status": "active",
            "intent": "plan",
            "title": "Parcours CAR-T (cilta-cel)",
            "subject": patient_ref,
            "period": {"start": "2026-03-02", "end": "2026-07-13"},
            "author": doctor,
            "activity": [
                {"reference": _ref(urls, "order"), "outcomeReference": [_ref(urls, "apheresis")]},
                {
                    "detail": {
                        "kind": "MedicationRequest",
                        "code": {"text": "Lymphodéplétion fludarabine + cyclophosphamide J-5 à J-3"},
                        "status": "completed",
                        "scheduledPeriod": {"start": "2026-04-08", "end": "2026-04-10"},
                    }
                },
                {
                    "outcomeReference": [_ref(urls, "infusion")],
                    "detail": {
                        "kind": "ServiceRequest",
                        "code": _coding(ATC, "L01XL05", "ciltacabtagene autoleucel"),
                        "status": "completed",
                        "scheduledString": "J0",
                    },
                },
            ],
        },
        "apheresis": {
            "resourceType": "Procedure",
            "identifier": [{"system": f"{LOCAL}/din", "value": din}],
            "basedOn": [_ref(urls, "order")],
            "status": "completed",
            "code": _coding(f"{LOCAL}/CodeSystem/pathway-step", "leukapheresis", "Leucaphérèse"),
            "subject": patient_ref,
            "performedPeriod": {"start": "2026-03-09T08:15:00+01:00", "end": "2026-03-09T12:40:00+01:00"},
            "performer": [{"actor": doctor, "onBehalfOf": hcl}],
            "focalDevice": [{"manipulated": _ref(urls, "apheresis_machine")}],
        },
        "infusion": {
            "resourceType": "Procedure",
            "basedOn": [_ref(urls, "order")],
            "status": "completed",
            "code": _coding(f"{LOCAL}/CodeSystem/pathway-step", "cart-infusion", "Réinjection CAR-T"),
            "subject": patient_ref,
            "performedDateTime": "2026-04-13T10:30:00+02:00",
            "performer": [{"actor": doctor, "onBehalfOf": hcl}],
            # Procedure.usedReference takes Device, Medication or Substance: the product as a Medication.
            "usedReference": [_ref(urls, "cart_product")],
        },
        "cyclophosphamide": _administration(
            urls,
            patient_ref,
            doctor,
            ATC,
            "L01AA01",
            "cyclophosphamide",
            300,
            "300 mg/m² IV sur 30 min, J-5 à J-3",
        ),
        "fludarabine": _administration(
            urls, patient_ref, doctor, ATC, "L01BB05", "fludarabine", 30, "30 mg/m² IV sur 30 min, J-5 à J-3"
        ),
        "cart_admin": {
            "resourceType": "MedicationAdministration",
            "status": "completed",
            "medicationReference": _ref(urls, "cart_product", "Carvykti"),
            "subject": patient_ref,
            "partOf": [_ref(urls, "infusion")],
            "effectiveDateTime": "2026-04-13T10:30:00+02:00",
            "performer": [{"actor": doctor}],
            "dosage": {
                "text": "0,75 x 10^6 cellules CAR+ viables/kg, perfusion IV unique",
                "route": _coding(EDQM_ROUTE, "20045000", "Intravenous use"),
                "dose": _quantity(0.75, "10*6/kg", "10^6 CAR+ cells/kg"),
            },
        },
        "cart_product": {
            "resourceType": "Medication",
            "code": _coding(ATC, "L01XL05", "ciltacabtagene autoleucel (Carvykti)"),
            "status": "active",
            "manufacturer": mfr,
            "form": {"text": "Dispersion pour perfusion"},
            "batch": {"lotNumber": batch, "expirationDate": "2026-10-06"},
        },
        "shipper": {
            "resourceType": "Device",
            "identifier": [{"system": f"{LOCAL}/shipper", "value": f"DS-{tag}"}],
            "status": "active",
            "manufacturer": "Cryoport",
            "deviceName": [{"name": "Cryoport Elite Cryogenic Shipper", "type": "manufacturer-name"}],
            "type": {"text": "Cryogenic dry shipper (liquid nitrogen vapour phase)"},
            "serialNumber": f"CP-{tag}",
            "owner": mfr,
        },
        "apheresis_machine": {
            "resourceType": "Device",
            "identifier": [{"system": f"{LOCAL}/asset", "value": "HCL-APH-07"}],
            "status": "active",
            "manufacturer": "Terumo BCT",
            "deviceName": [{"name": "Spectra Optia", "type": "manufacturer-name"}],
            "type": {"text": "Apheresis system"},
            "owner": hcl,
        },
        "starting_material": {
            "resourceType": "BiologicallyDerivedProduct",
            "identifier": [{"system": f"{LOCAL}/din", "value": din}],
            "productCategory": "cells",
            "productCode": {"text": "Leukapheresis material (autologous PBMC)"},
            "status": "unavailable",
            "request": [_ref(urls, "order")],
            "quantity": 1,
            "collection": {
                "collector": doctor,
                "source": patient_ref,
                "collectedDateTime": "2026-03-09T12:40:00+01:00",
            },
            "storage": [
                {
                    "description": "Transport frais 2-8 °C vers le site de fabrication",
                    "temperature": 4,
                    "scale": "celsius",
                }
            ],
        },
        "finished_product": {
            "resourceType": "BiologicallyDerivedProduct",
            "identifier": [{"system": f"{LOCAL}/batch", "value": batch}],
            "productCategory": "cells",
            "productCode": _coding(ATC, "L01XL05", "ciltacabtagene autoleucel"),
            "status": "available",
            "request": [_ref(urls, "order")],
            "quantity": 1,
            "parent": [_ref(urls, "starting_material")],
            "processing": [
                {
                    "description": "Transduction lentivirale, expansion, cryoconservation",
                    "timeDateTime": "2026-03-30T16:00:00+02:00",
                }
            ],
            "storage": [
                {"description": "Phase vapeur d'azote liquide", "temperature": -180, "scale": "celsius"}
            ],
        },
        "shipper_temperature": {
            "resourceType": "Observation",
            "status": "final",
            "category": [_coding(f"{LOCAL}/CodeSystem/observation-category", "logistics", "Logistics")],
            "code": _coding(f"{LOCAL}/CodeSystem/logistics", "shipper-temperature", "Shipper temperature"),
            "subject": patient_ref,
            "focus": [_ref(urls, "finished_product")],
            "effectiveDateTime": "2026-04-12T18:00:00+02:00",
            "valueQuantity": _quantity(-180, "Cel", "°C"),
            "device": _ref(urls, "shipper"),
        },
        "alc_baseline": _lymphocytes(patient_ref, "2026-03-06T08:00:00+01:00", 1.2),
        "alc_day0": _lymphocytes(patient_ref, "2026-04-13T07:30:00+02:00", 0.1),
    }
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": urls[key],
                "resource": resources[key],
                "request": {"method": "POST", "url": resources[key]["resourceType"]},
            }
            for key in keys
        ],
    }


def _administration(
    urls: dict[str, str],
    patient: dict,
    doctor: dict,
    system: str,
    code: str,
    name: str,
    mg_per_m2: int,
    text: str,
) -> dict[str, Any]:
    return {
        "resourceType": "MedicationAdministration",
        "status": "completed",
        "medicationCodeableConcept": _coding(system, code, name),
        "subject": patient,
        "supportingInformation": [_ref(urls, "order")],
        "effectivePeriod": {"start": "2026-04-08T09:00:00+02:00", "end": "2026-04-10T09:30:00+02:00"},
        "performer": [{"actor": doctor}],
        "reasonCode": [{"text": "Lymphodéplétion avant CAR-T"}],
        "dosage": {
            "text": text,
            "route": _coding(EDQM_ROUTE, "20045000", "Intravenous use"),
            "dose": _quantity(mg_per_m2, "mg/m2", "mg/m²"),
        },
    }


def _lymphocytes(patient: dict, when: str, value: float) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            _coding("http://terminology.hl7.org/CodeSystem/observation-category", "laboratory", "Laboratory")
        ],
        "code": _coding(LOINC, "731-0", "Lymphocytes [#/volume] in Blood by Automated count"),
        "subject": patient,
        "effectiveDateTime": when,
        "valueQuantity": _quantity(value, "10*3/uL"),
        "referenceRange": [{"low": _quantity(1.0, "10*3/uL"), "high": _quantity(4.0, "10*3/uL")}],
    }


if __name__ == "__main__":
    print(json.dumps(pathway_bundle(), ensure_ascii=False, indent=2))
