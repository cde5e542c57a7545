"""_summary and _elements over the REST API: reads, searches, paging, includes, XML, and writes of a
subset refused. Every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from lxml import etree

from adapter.fhirio.subsetting import SUBSETTED_SYSTEM
from tests import fixtures
from tests.api.helpers import send

FHIR_NS = {"f": "http://hl7.org/fhir"}


def _subsetted(resource: dict) -> bool:
    return any(
        t.get("system") == SUBSETTED_SYSTEM and t.get("code") == "SUBSETTED"
        for t in resource.get("meta", {}).get("tag", [])
    )


def _local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _pathway(client) -> tuple[dict, list[dict]]:  # type: ignore[no-untyped-def]
    resource = fixtures.patient()
    resource["maritalStatus"] = {"text": "mariée"}  # not a summary element
    patient = send(client, "POST", "/fhir/Patient", resource).get_json()
    tasks = []
    for n in range(3):
        task = fixtures.task(order=f"ORD-S{n}")
        task["for"] = {"reference": f"Patient/{patient['id']}"}
        task["description"] = "Commande Yescarta, aphérèse prévue"
        tasks.append(send(client, "POST", "/fhir/Task", task).get_json())
    return patient, tasks


def test_a_read_with_summary_returns_the_summary_elements_tagged(client):
    patient, _ = _pathway(client)
    full = client.get(f"/fhir/Patient/{patient['id']}")
    response = client.get(f"/fhir/Patient/{patient['id']}?_summary=true")
    assert response.status_code == 200
    body = response.get_json()
    assert _subsetted(body) and "maritalStatus" not in body
    # Patient.address and name are summary elements; the version and its ETag are those of the resource.
    assert body["name"] == patient["name"] and body["address"] == patient["address"]
    assert response.headers["ETag"] == full.headers["ETag"]
    assert not _subsetted(full.get_json()) and full.get_json()["maritalStatus"] == {"text": "mariée"}
    elements = client.get(f"/fhir/Patient/{patient['id']}?_elements=birthDate").get_json()
    assert set(elements) == {"resourceType", "id", "meta", "birthDate"}
    assert client.get(f"/fhir/Patient/{patient['id']}?_summary=count").status_code == 400


def test_a_vread_in_xml_is_subsetted_too(client):
    patient, _ = _pathway(client)
    response = client.get(f"/fhir/Patient/{patient['id']}/_history/1?_elements=gender&_format=xml")
    assert response.status_code == 200
    root = etree.fromstring(response.data)
    assert root.find("f:gender", FHIR_NS).get("value") == "female"
    assert root.find("f:name", FHIR_NS) is None
    tags = root.findall("f:meta/f:tag/f:code", FHIR_NS)
    assert [t.get("value") for t in tags] == ["SUBSETTED"]


def test_search_elements_apply_to_every_page_and_stay_in_the_links(client):
    _pathway(client)
    bundle = client.get("/fhir/Task?_elements=businessStatus&_count=2").get_json()
    seen = []
    while True:
        for entry in bundle["entry"]:
            task = entry["resource"]
            assert set(task) == {"resourceType", "id", "meta", "status", "intent", "businessStatus"}
            assert _subsetted(task)
            seen.append(task["id"])
        self_link = next(link["url"] for link in bundle["link"] if link["relation"] == "self")
        assert parse_qs(urlsplit(self_link).query)["_elements"] == ["businessStatus"]
        following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not following:
            break
        assert parse_qs(urlsplit(following[0]).query)["_elements"] == ["businessStatus"]
        bundle = client.get(_local(following[0])).get_json()
    assert len(seen) == len(set(seen)) == 3


def test_bare_elements_spare_included_resources_and_typed_ones_reach_them(client):
    _pathway(client)
    bundle = client.get("/fhir/Task?_include=Task:patient&_elements=status").get_json()
    included = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "include"]
    assert len(included) == 1 and not _subsetted(included[0]) and "name" in included[0]
    bundle = client.get("/fhir/Task?_include=Task:patient&_elements=Patient.gender").get_json()
    by_mode = {e["search"]["mode"]: e["resource"] for e in bundle["entry"]}
    assert set(by_mode["include"]) == {"resourceType", "id", "meta", "gender"}
    assert not _subsetted(by_mode["match"]) and "description" in by_mode["match"]
    refused = client.get("/fhir/Task?_include=Task:patient&_summary=text")
    assert refused.status_code == 400


def test_summary_data_and_text_in_a_search(client):
    _pathway(client)
    task = fixtures.task(order="ORD-TEXT")
    task["text"] = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Commande</div>'}
    send(client, "POST", "/fhir/Task", task)
    text = client.get("/fhir/Task?identifier=ORD-TEXT&_summary=text").get_json()["entry"][0]["resource"]
    assert set(text) == {"resourceType", "id", "meta", "text", "status", "intent"}
    data = client.get("/fhir/Task?identifier=ORD-TEXT&_summary=data").get_json()["entry"][0]["resource"]
    assert "text" not in data and data["businessStatus"] == task["businessStatus"] and _subsetted(data)


def test_an_unknown_element_is_a_warning_or_a_400_under_strict_handling(client):
    _pathway(client)
    bundle = client.get("/fhir/Task?_elements=shoeSize").get_json()
    outcome = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert "shoeSize" in outcome[0]["issue"][0]["diagnostics"]
    assert all(not _subsetted(e["resource"]) for e in bundle["entry"] if e["search"]["mode"] == "match")
    strict = client.get("/fhir/Task?_elements=shoeSize", headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400
    assert strict.get_json()["issue"][0]["expression"] == ["_elements"]


def test_a_subset_sent_back_is_refused_and_the_resource_keeps_its_elements(client):
    patient, _ = _pathway(client)
    subset = client.get(f"/fhir/Patient/{patient['id']}?_elements=gender").get_json()
    subset["gender"] = "other"
    response = send(client, "PUT", f"/fhir/Patient/{patient['id']}", subset)
    assert response.status_code == 422
    assert response.get_json()["issue"][0]["expression"] == ["meta.tag"]
    stored = client.get(f"/fhir/Patient/{patient['id']}").get_json()
    assert stored["gender"] == "female" and stored["name"] == patient["name"]
    assert stored["meta"]["versionId"] == "1"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": subset, "request": {"method": "PUT", "url": f"Patient/{patient['id']}"}}],
    }
    assert send(client, "POST", "/fhir", bundle).status_code == 422
