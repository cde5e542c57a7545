"""Sample resources for tests: realistic French CAR-T data written for this project."""

from __future__ import annotations

INS_NIR = "urn:oid:1.2.250.1.213.1.4.8"
FINESS = "https://finess.esante.gouv.fr"


def patient(ins: str = "2750399123456", family: str = "Lefèvre", given: str = "Hélène") -> dict:
    return {
        "resourceType": "Patient",
        "identifier": [{"use": "official", "system": INS_NIR, "value": ins}],
        "name": [{"use": "official", "family": family, "given": [given, "Marie"]}],
        "gender": "female",
        "birthDate": "1975-03-12",
        "address": [
            {"line": ["12 rue des Tanneurs"], "city": "Lyon", "postalCode": "69003", "country": "FR"}
        ],
    }


def organization(finess: str = "690781810", name: str = "Hospices Civils de Lyon") -> dict:
    return {
        "resourceType": "Organization",
        "identifier": [{"system": FINESS, "value": finess}],
        "name": name,
        "active": True,
    }


def task(
    owner: str = "Organization/kite-eu",
    status: str = "requested",
    business: str = "requested",
    order: str = "ORD-0001",
) -> dict:
    return {
        "resourceType": "Task",
        "identifier": [{"system": "https://cart-adapter.example.org/order", "value": order}],
        "status": status,
        "intent": "order",
        "businessStatus": {
            "coding": [
                {"system": "https://cart-adapter.example.org/CodeSystem/order-milestone", "code": business}
            ]
        },
        "owner": {"reference": owner},
        "authoredOn": "2026-03-02T09:30:00+01:00",
    }


def service_request(patient_id: str) -> dict:
    """A CAR-T product order for a stored patient."""
    return {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "code": {"text": "CAR-T product order"},
        "subject": {"reference": f"Patient/{patient_id}"},
    }


def observation(value: str = "1.50") -> dict:
    from decimal import Decimal

    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "731-0"}]},
        "effectiveDateTime": "2026-03-05T10:15:00+01:00",
        "valueQuantity": {
            "value": Decimal(value),
            "unit": "10*3/uL",
            "system": "http://unitsofmeasure.org",
            "code": "10*3/uL",
        },
    }


CHECKLIST = "https://cart-adapter.example.org/fhir/Questionnaire/cart-infusion-checklist"


def questionnaire_response(questionnaire: str = CHECKLIST) -> dict:
    """A completed answer to a questionnaire given by its canonical (with |version or not)."""
    return {"resourceType": "QuestionnaireResponse", "status": "completed", "questionnaire": questionnaire}


def fhirpath_replace(path: str, value: dict) -> dict:
    """A FHIRPath Patch (a Parameters resource) of one replace operation; `value` is its typed value,
    e.g. {"valueCode": "completed"}."""
    return {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "operation",
                "part": [
                    {"name": "type", "valueCode": "replace"},
                    {"name": "path", "valueString": path},
                    {"name": "value", **value},
                ],
            }
        ],
    }
