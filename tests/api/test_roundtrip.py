"""JSON in, stored, XML out, XML back in, JSON out: the resource is the same all the way."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.fhirio.jsonio import parse_json
from adapter.fhirio.xml import parse_xml
from tests.api.helpers import send

SAMPLES = sorted((Path(__file__).resolve().parents[1] / "samples").glob("*.json"))


def _without_meta(resource: dict) -> dict:
    return {k: v for k, v in resource.items() if k not in ("id", "meta")}


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_json_store_xml_json_round_trip(client, sample: Path) -> None:
    original = parse_json(sample.read_bytes())
    created = send(client, "POST", f"/fhir/{original['resourceType']}", original)
    assert created.status_code == 201, created.data
    url = created.headers["Location"].split("/fhir", 1)[1].rsplit("/_history", 1)[0]

    stored_json = parse_json(client.get(f"/fhir{url}").data)
    assert _without_meta(stored_json) == original

    xml = client.get(f"/fhir{url}", headers={"Accept": "application/fhir+xml"}).data
    assert parse_xml(xml) == stored_json

    # Send the XML back as the next version, then read JSON again.
    again = client.put(f"/fhir{url}", data=xml, headers={"Content-Type": "application/fhir+xml"})
    assert again.status_code == 200, again.data
    final = parse_json(client.get(f"/fhir{url}").data)
    assert _without_meta(final) == original
    assert final["meta"]["versionId"] == "2"
