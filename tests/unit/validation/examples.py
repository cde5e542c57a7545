"""Realistic resources in the style of the official FHIR R4 examples, valid against the core definitions."""

from __future__ import annotations

from decimal import Decimal


def _text(summary: str) -> dict:
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{summary}</p></div>'}


PATIENT = {
    "resourceType": "Patient",
    "id": "example",
    "meta": {"versionId": "3", "lastUpdated": "2024-05-02T10:12:00.512+02:00"},
    "text": _text("Peter James Chalmers, male, born 1974-12-25"),
    "identifier": [
        {
            "use": "usual",
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
            "system": "urn:oid:1.2.36.146.595.217.0.1",
            "value": "12345",
            "period": {"start": "2001-05-06"},
            "assigner": {"display": "Acme Healthcare"},
        }
    ],
    "active": True,
    "name": [
        {"use": "official", "family": "Chalmers", "given": ["Peter", "James"]},
        {"use": "usual", "given": ["Jim"]},
        {"use": "maiden", "family": "Windsor", "given": ["Peter", "James"], "period": {"end": "2002"}},
    ],
    "telecom": [
        {"use": "home"},
        {"system": "phone", "value": "(03) 5555 6473", "use": "work", "rank": 1},
        {"system": "phone", "value": "(03) 3410 5613", "use": "mobile", "rank": 2},
    ],
    "gender": "male",
    "birthDate": "1974-12-25",
    "_birthDate": {
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                "valueDateTime": "1974-12-25T14:35:45-05:00",
            }
        ]
    },
    "deceasedBoolean": False,
    "address": [
        {
            "use": "home",
            "type": "both",
            "text": "534 Erewhon St PeasantVille, Rainbow, Vic  3999",
            "line": ["534 Erewhon St"],
            "city": "PleasantVille",
            "district": "Rainbow",
            "state": "Vic",
            "postalCode": "3999",
            "period": {"start": "1974-12-25"},
        }
    ],
    "contact": [
        {
            "relationship": [
                {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "N"}]}
            ],
            "name": {
                "family": "du Marché",
                "_family": {
                    "extension": [
                        {
                            "url": "http://hl7.org/fhir/StructureDefinition/humanname-own-prefix",
                            "valueString": "VV",
                        }
                    ]
                },
                "given": ["Bénédicte"],
            },
            "telecom": [{"system": "phone", "value": "+33 (237) 998327"}],
            "gender": "female",
            "period": {"start": "2012"},
        }
    ],
    "managingOrganization": {"reference": "Organization/1"},
}

ORGANIZATION = {
    "resourceType": "Organization",
    "id": "hl7",
    "text": _text("Health Level Seven International"),
    "identifier": [{"system": "https://finess.esante.gouv.fr", "value": "690781810"}],
    "active": True,
    "type": [
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov"}]}
    ],
    "name": "Health Level Seven International",
    "alias": ["HL7 International"],
    "telecom": [
        {"system": "phone", "value": "(+1) 734-677-7777"},
        {"system": "email", "value": "hq@HL7.org"},
    ],
    "address": [
        {
            "line": ["3300 Washtenaw Avenue, Suite 227"],
            "city": "Ann Arbor",
            "state": "MI",
            "postalCode": "48104",
            "country": "USA",
        }
    ],
}

PRACTITIONER = {
    "resourceType": "Practitioner",
    "id": "example",
    "text": _text("Adam Careful"),
    "identifier": [{"system": "http://www.acme.org/practitioners", "value": "23"}],
    "active": True,
    "name": [{"family": "Careful", "given": ["Adam"], "prefix": ["Dr"]}],
    "address": [
        {
            "use": "home",
            "line": ["534 Erewhon St"],
            "city": "PleasantVille",
            "state": "Vic",
            "postalCode": "3999",
        }
    ],
    "qualification": [
        {
            "identifier": [{"system": "http://example.org/UniversityIdentifier", "value": "12345"}],
            "code": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v2-0360/2.7",
                        "code": "BS",
                        "display": "Bachelor of Science",
                    }
                ],
                "text": "Bachelor of Science",
            },
            "period": {"start": "1995"},
            "issuer": {"display": "Example University"},
        }
    ],
}

OBSERVATION = {
    "resourceType": "Observation",
    "id": "f001",
    "text": _text("Glucose 6.3 mmol/l (high)"),
    "identifier": [
        {
            "use": "official",
            "system": "http://www.bmc.nl/zorgportal/identifiers/observations",
            "value": "6323",
        }
    ],
    "status": "final",
    "category": [
        {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}
            ]
        }
    ],
    "code": {
        "coding": [
            {"system": "http://loinc.org", "code": "15074-8", "display": "Glucose [Moles/volume] in Blood"}
        ]
    },
    "subject": {"reference": "Patient/f001", "display": "P. van de Heuvel"},
    "effectivePeriod": {"start": "2013-04-02T09:30:10+01:00"},
    "issued": "2013-04-03T15:30:10+01:00",
    "performer": [{"reference": "Practitioner/f005", "display": "A. Langeveld"}],
    "valueQuantity": {
        "value": Decimal("6.3"),
        "unit": "mmol/l",
        "system": "http://unitsofmeasure.org",
        "code": "mmol/L",
    },
    "interpretation": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                    "code": "H",
                    "display": "High",
                }
            ]
        }
    ],
    "referenceRange": [
        {
            "low": {
                "value": Decimal("3.1"),
                "unit": "mmol/l",
                "system": "http://unitsofmeasure.org",
                "code": "mmol/L",
            },
            "high": {
                "value": Decimal("6.2"),
                "unit": "mmol/l",
                "system": "http://unitsofmeasure.org",
                "code": "mmol/L",
            },
        }
    ],
}

BLOOD_PRESSURE = {
    "resourceType": "Observation",
    "id": "blood-pressure",
    "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/vitalsigns"]},
    "text": _text("Blood pressure 107/60 mmHg"),
    "status": "final",
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "vital-signs",
                    "display": "Vital Signs",
                }
            ]
        }
    ],
    "code": {
        "coding": [{"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure panel"}],
        "text": "Blood pressure systolic & diastolic",
    },
    "subject": {"reference": "Patient/example"},
    "effectiveDateTime": "2012-09-17",
    "performer": [{"reference": "Practitioner/example"}],
    "bodySite": {
        "coding": [{"system": "http://snomed.info/sct", "code": "368209003", "display": "Right arm"}]
    },
    "component": [
        {
            "code": {
                "coding": [
                    {"system": "http://loinc.org", "code": "8480-6", "display": "Systolic blood pressure"}
                ]
            },
            "valueQuantity": {
                "value": 107,
                "unit": "mmHg",
                "system": "http://unitsofmeasure.org",
                "code": "mm[Hg]",
            },
        },
        {
            "code": {
                "coding": [
                    {"system": "http://loinc.org", "code": "8462-4", "display": "Diastolic blood pressure"}
                ]
            },
            "valueQuantity": {
                "value": 60,
                "unit": "mmHg",
                "system": "http://unitsofmeasure.org",
                "code": "mm[Hg]",
            },
        },
    ],
}

SERVICE_REQUEST = {
    "resourceType": "ServiceRequest",
    "id": "apheresis",
    "text": _text("Leukapheresis for CAR-T manufacturing"),
    "identifier": [{"system": "https://hospital.example.org/orders", "value": "SR-2024-001"}],
    "status": "active",
    "intent": "order",
    "category": [
        {
            "coding": [
                {"system": "http://snomed.info/sct", "code": "387713003", "display": "Surgical procedure"}
            ]
        }
    ],
    "priority": "urgent",
    "code": {
        "coding": [{"system": "http://snomed.info/sct", "code": "127788007", "display": "Leukapheresis"}]
    },
    "subject": {"reference": "Patient/example"},
    "occurrencePeriod": {"start": "2024-03-10", "end": "2024-03-12"},
    "authoredOn": "2024-03-01T09:00:00+01:00",
    "requester": {"reference": "Practitioner/example"},
    "performer": [{"reference": "Organization/hl7"}],
    "reasonCode": [{"text": "Relapsed diffuse large B-cell lymphoma"}],
    "note": [
        {"authorString": "Dr Careful", "time": "2024-03-01T09:05:00+01:00", "text": "Check venous access."}
    ],
}

TASK = {
    "resourceType": "Task",
    "id": "example1",
    "text": _text("Manufacture CAR-T product"),
    "identifier": [
        {"use": "official", "system": "http:/goodhealth.org/identifiers", "value": "20170201-001"}
    ],
    "basedOn": [{"reference": "ServiceRequest/apheresis"}],
    "groupIdentifier": {
        "use": "official",
        "system": "http:/goodhealth.org/accession/identifiers",
        "value": "G20170201-001",
    },
    "status": "in-progress",
    "businessStatus": {"text": "specimen received, test in progress"},
    "intent": "order",
    "priority": "routine",
    "code": {"text": "Manufacture"},
    "focus": {"reference": "ServiceRequest/apheresis"},
    "for": {"reference": "Patient/example"},
    "executionPeriod": {"start": "2016-10-31T08:25:05+10:00"},
    "authoredOn": "2016-10-31T08:25:05+10:00",
    "lastModified": "2016-10-31T09:45:05+10:00",
    "requester": {"reference": "Practitioner/example"},
    "owner": {"reference": "Organization/hl7"},
    "restriction": {"repetitions": 1, "period": {"end": "2016-11-02T09:45:05+10:00"}},
    "input": [{"type": {"text": "lot"}, "valueString": "LOT-42"}],
    "output": [
        {"type": {"text": "product"}, "valueReference": {"reference": "BiologicallyDerivedProduct/cart-1"}}
    ],
}

PROCEDURE = {
    "resourceType": "Procedure",
    "id": "infusion",
    "text": _text("CAR-T infusion"),
    "status": "completed",
    "code": {
        "coding": [
            {"system": "http://snomed.info/sct", "code": "433236007", "display": "Transfusion of product"}
        ]
    },
    "subject": {"reference": "Patient/example"},
    "performedDateTime": "2024-04-10T10:02:00+02:00",
    "performer": [{"function": {"text": "nurse"}, "actor": {"reference": "Practitioner/example"}}],
    "location": {"display": "Haematology day unit"},
    "reasonCode": [{"text": "DLBCL"}],
    "bodySite": [{"coding": [{"system": "http://snomed.info/sct", "code": "368209003"}]}],
    "outcome": {"text": "infused without incident"},
    "followUp": [{"text": "monitor for cytokine release syndrome"}],
    "usedCode": [{"text": "infusion set"}],
}

MEDICATION_ADMINISTRATION = {
    "resourceType": "MedicationAdministration",
    "id": "medadminexample03",
    "text": _text("Tisagenlecleucel infusion"),
    "status": "completed",
    "medicationCodeableConcept": {
        "coding": [{"system": "http://www.whocc.no/atc", "code": "L01XL04", "display": "tisagenlecleucel"}]
    },
    "subject": {"reference": "Patient/example"},
    "context": {"reference": "Encounter/f001"},
    "effectivePeriod": {"start": "2015-01-15T22:03:00+01:00", "end": "2015-01-16T02:03:00+01:00"},
    "performer": [{"actor": {"reference": "Practitioner/example"}}],
    "request": {"reference": "MedicationRequest/medrx0305"},
    "dosage": {
        "text": "one bag over 30 minutes",
        "route": {
            "coding": [
                {"system": "http://snomed.info/sct", "code": "47625008", "display": "Intravenous route"}
            ]
        },
        "dose": {"value": 1, "unit": "bag"},
        "rateRatio": {
            "numerator": {"value": 70, "system": "http://unitsofmeasure.org", "code": "mL"},
            "denominator": {"value": 30, "system": "http://unitsofmeasure.org", "code": "min"},
        },
    },
}

DEVICE = {
    "resourceType": "Device",
    "id": "shipper",
    "text": _text("Cryogenic dry shipper"),
    "identifier": [
        {"system": "http://acme.com/devices/pacemakers/octane/serial", "value": "1234-5678-90AB-CDEF"}
    ],
    "udiCarrier": [
        {
            "deviceIdentifier": "09504000059118",
            "carrierHRF": "(01)09504000059118(17)141120(10)7654321D(21)10987654d321",
            "entryType": "barcode",
        }
    ],
    "status": "active",
    "manufacturer": "Acme Devices, Inc",
    "expirationDate": "2026-11-20",
    "lotNumber": "7654321D",
    "serialNumber": "10987654d321",
    "deviceName": [{"name": "Dry shipper XL", "type": "user-friendly-name"}],
    "type": {
        "coding": [
            {
                "system": "http://snomed.info/sct",
                "code": "706767009",
                "display": "Cryogenic storage container",
            }
        ]
    },
    "owner": {"reference": "Organization/hl7"},
    "note": [{"text": "Temperature logger attached", "time": "2024-03-20T10:00:00Z"}],
}

PRODUCT = {
    "resourceType": "BiologicallyDerivedProduct",
    "id": "cart-1",
    "text": _text("Autologous CAR-T cells"),
    "identifier": [
        {"system": "https://cart-adapter.example.org/fhir/NamingSystem/coi", "value": "COI-FR-69-000042"}
    ],
    "productCategory": "cells",
    "productCode": {"text": "Autologous anti-CD19 CAR-T cells"},
    "status": "available",
    "request": [{"reference": "ServiceRequest/apheresis"}],
    "quantity": 1,
    "collection": {
        "source": {"reference": "Patient/example"},
        "collectedDateTime": "2024-03-11T08:00:00+01:00",
    },
    "processing": [{"description": "Transduction", "timeDateTime": "2024-03-14T12:00:00+01:00"}],
    "storage": [
        {
            "description": "Vapour phase liquid nitrogen",
            "temperature": -150,
            "scale": "celsius",
            "duration": {"start": "2024-03-20"},
        }
    ],
}

CARE_PLAN = {
    "resourceType": "CarePlan",
    "id": "pathway",
    "text": _text("CAR-T pathway"),
    "status": "active",
    "intent": "plan",
    "title": "CAR-T cell therapy pathway",
    "subject": {"reference": "Patient/example"},
    "period": {"start": "2024-03-01", "end": "2024-09-01"},
    "created": "2024-02-28",
    "author": {"reference": "Practitioner/example"},
    "activity": [
        {
            "detail": {
                "kind": "ServiceRequest",
                "code": {"text": "Leukapheresis"},
                "status": "completed",
                "scheduledPeriod": {"start": "2024-03-10", "end": "2024-03-12"},
                "performer": [{"reference": "Organization/hl7"}],
            }
        },
        {"reference": {"reference": "ServiceRequest/apheresis"}},
    ],
    "note": [{"text": "Bridging therapy discussed"}],
}

BUNDLE = {
    "resourceType": "Bundle",
    "id": "bundle-transaction",
    "meta": {"lastUpdated": "2014-08-18T01:43:30Z"},
    "type": "transaction",
    "entry": [
        {
            "fullUrl": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a",
            "resource": {
                "resourceType": "Patient",
                "text": _text("Some narrative"),
                "active": True,
                "name": [{"use": "official", "family": "Chalmers", "given": ["Peter", "James"]}],
                "gender": "male",
                "birthDate": "1974-12-25",
            },
            "request": {"method": "POST", "url": "Patient"},
        },
        {
            "fullUrl": "urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059",
            "resource": {
                "resourceType": "Observation",
                "text": _text("Weight"),
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                "subject": {"reference": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"},
                "valueQuantity": {
                    "value": Decimal("72.5"),
                    "unit": "kg",
                    "system": "http://unitsofmeasure.org",
                    "code": "kg",
                },
            },
            "request": {"method": "POST", "url": "Observation", "ifNoneExist": "identifier=urn:a|1"},
        },
        {"request": {"method": "DELETE", "url": "Patient/234"}},
        {"request": {"method": "GET", "url": "Patient?name=peter"}},
    ],
}

EXAMPLES = {
    "patient": PATIENT,
    "organization": ORGANIZATION,
    "practitioner": PRACTITIONER,
    "observation": OBSERVATION,
    "blood-pressure": BLOOD_PRESSURE,
    "service-request": SERVICE_REQUEST,
    "task": TASK,
    "procedure": PROCEDURE,
    "medication-administration": MEDICATION_ADMINISTRATION,
    "device": DEVICE,
    "biologically-derived-product": PRODUCT,
    "care-plan": CARE_PLAN,
    "bundle": BUNDLE,
}
