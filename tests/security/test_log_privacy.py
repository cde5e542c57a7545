"""Patient data never reaches the application log, even when requests fail."""

from __future__ import annotations

import logging

from tests.security.conftest import World


def test_no_patient_data_in_logs_of_a_busy_exchange(world: World, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    world.hospital_x("GET", "/fhir/Patient?family=Martin&birthdate=1968-11-02")
    world.hospital_x("GET", "/fhir/Patient?identifier=urn:oid:1.2.250.1.213.1.4.8|2680169123456")
    world.hospital_x(
        "POST",
        "/fhir/Patient",
        {"resourceType": "Patient", "name": [{"family": "Martin"}], "birthDate": "1968-11-02x"},
    )
    world.hospital_x("POST", "/fhir/Patient", b"{not json 2680169123456")  # type: ignore[arg-type]
    world.maker_a("GET", "/fhir/Patient?family=Martin")
    text = caplog.text
    for marker in ("2680169123456", "Martin", "1968-11-02"):
        assert marker not in text
