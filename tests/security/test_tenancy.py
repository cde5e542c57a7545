"""Organisations see only their own data; manufacturers see only their orders, pseudonymised."""

from __future__ import annotations

import pytest

from adapter.fhirio.jsonio import dump_json
from tests import fixtures
from tests.security.conftest import COI, World, order_and_task


def _ids(response) -> set[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.data
    return {
        e["resource"]["id"] for e in response.get_json().get("entry", []) if e["search"]["mode"] == "match"
    }


# -- manufacturer A against manufacturer B's order and the hospital's other patients ------------------


@pytest.mark.parametrize("target", ["ty1", "sry1", "py1", "px2"])
def test_manufacturer_cannot_read_or_vread_or_history_others(world: World, target: str) -> None:
    res_type = {"t": "Task", "s": "ServiceRequest", "p": "Patient"}[target[0]]
    url = f"/fhir/{res_type}/{world.ids[target]}"
    for path in (url, f"{url}/_history/1", f"{url}/_history"):
        response = world.maker_a("GET", path)
        assert response.status_code == 404, path
        assert response.get_json()["resourceType"] == "OperationOutcome"


def test_manufacturer_reads_its_order_and_what_it_points_to(world: World) -> None:
    assert world.maker_a("GET", f"/fhir/Task/{world.ids['tx1']}").status_code == 200
    assert world.maker_a("GET", f"/fhir/ServiceRequest/{world.ids['srx1']}").status_code == 200
    assert world.maker_a("GET", f"/fhir/Patient/{world.ids['px1']}").status_code == 200


def test_manufacturer_searches_only_its_own(world: World) -> None:
    assert _ids(world.maker_a("GET", "/fhir/Task")) == {world.ids["tx1"]}
    assert _ids(world.maker_a("GET", "/fhir/Patient")) == {world.ids["px1"]}
    assert _ids(world.maker_a("GET", "/fhir/ServiceRequest")) == {world.ids["srx1"]}
    assert _ids(world.maker_b("GET", "/fhir/Task")) == {world.ids["ty1"]}
    assert world.maker_a("GET", "/fhir/Task?_summary=count").get_json()["total"] == 1
    assert _ids(world.maker_a("GET", f"/fhir/Task?_id={world.ids['ty1']}")) == set()


def test_a_compartment_search_finds_only_what_the_client_may_see(world: World) -> None:
    px1, py1 = world.ids["px1"], world.ids["py1"]
    # An order of hospital Y about hospital X's patient: in that patient's compartment, out of X's sight.
    request, _ = order_and_task(px1, "Organization/mfr-b", "ORD-Y-2")
    assert world.hospital_y("POST", "/fhir/ServiceRequest", request).status_code == 201
    assert _ids(world.hospital_x("GET", f"/fhir/Patient/{px1}/ServiceRequest")) == {world.ids["srx1"]}
    assert len(_ids(world.admin("GET", f"/fhir/Patient/{px1}/ServiceRequest"))) == 2
    assert _ids(world.maker_a("GET", f"/fhir/Patient/{px1}/ServiceRequest")) == {world.ids["srx1"]}
    assert _ids(world.maker_a("GET", f"/fhir/Patient/{py1}/ServiceRequest")) == set()
    # Patients linked to a patient are a Patient search on something a manufacturer does not see.
    assert world.maker_a("GET", f"/fhir/Patient/{px1}/Patient").status_code == 403


def test_everything_gives_each_client_only_its_part_of_the_record(world: World) -> None:
    px1 = world.ids["px1"]
    request, _ = order_and_task(px1, "Organization/mfr-b", "ORD-Y-3")
    assert world.hospital_y("POST", "/fhir/ServiceRequest", request).status_code == 201

    def record(caller) -> dict:  # type: ignore[no-untyped-def]
        response = caller("GET", f"/fhir/Patient/{px1}/$everything")
        assert response.status_code == 200, response.data
        return {
            (e["resource"]["resourceType"], e["resource"]["id"]): e["resource"]
            for e in response.get_json()["entry"]
        }

    for_maker = record(world.maker_a)
    assert set(for_maker) == {
        ("Patient", px1),
        ("ServiceRequest", world.ids["srx1"]),
        ("Task", world.ids["tx1"]),
    }
    # The manufacturer's view of the patient is the pseudonymised one, as on a read.
    assert for_maker[("Patient", px1)] == world.maker_a("GET", f"/fhir/Patient/{px1}").get_json()
    assert "name" not in for_maker[("Patient", px1)]
    # Hospital Y's own order about the patient does not open X's patient to it; X does not see Y's order.
    assert ("ServiceRequest", world.ids["srx1"]) in record(world.hospital_x)
    assert len([k for k in record(world.hospital_x) if k[0] == "ServiceRequest"]) == 1
    assert len([k for k in record(world.admin) if k[0] == "ServiceRequest"]) == 2
    for outsider in (world.hospital_y, world.maker_b):
        assert outsider("GET", f"/fhir/Patient/{px1}/$everything").status_code == 404


def test_a_task_owned_through_a_versioned_reference_is_its_owners(world: World) -> None:
    _, task = order_and_task(world.ids["px2"], "Organization/mfr-b/_history/3", "ORD-X-2")
    created = world.hospital_x("POST", "/fhir/Task", task)
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.get_json()["id"] in _ids(world.maker_b("GET", "/fhir/Task"))
    assert created.get_json()["id"] not in _ids(world.maker_a("GET", "/fhir/Task"))
    # ... and its owner updates its milestone as on any Task it owns.
    view = world.maker_b("GET", f"/fhir/Task/{created.get_json()['id']}").get_json()
    view["businessStatus"] = {"text": "in-manufacturing"}
    updated = world.maker_b("PUT", f"/fhir/Task/{view['id']}", view)
    assert updated.status_code == 200, updated.get_data(as_text=True)


def test_a_task_owned_by_another_servers_organization_is_not_the_local_ones(world: World) -> None:
    # http://other.example/fhir/Organization/mfr-b is another server's organisation, not this server's
    # Organization/mfr-b: its manufacturer client does not get the order; and a result about a
    # ServiceRequest of another server is not about the local ServiceRequest of the same id (it took
    # that order's labels, so the hospital holding it saw the result).
    _, task = order_and_task(world.ids["px2"], "http://other.example/fhir/Organization/mfr-b", "ORD-X-3")
    created = world.hospital_x("POST", "/fhir/Task", task)
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.get_json()["id"] not in _ids(world.maker_b("GET", "/fhir/Task"))
    result = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "viable CD3+ cells"},
        "basedOn": [{"reference": f"http://other.example/fhir/ServiceRequest/{world.ids['sry1']}"}],
    }
    posted = world.maker_b("POST", "/fhir/Observation", result)
    assert posted.status_code == 403, posted.get_data(as_text=True)
    assert "its own orders" in posted.get_json()["issue"][0]["diagnostics"]
    assert _ids(world.hospital_y("GET", "/fhir/Observation")) == set()


def test_manufacturer_type_history_shows_only_its_own(world: World) -> None:
    history = world.maker_a("GET", "/fhir/Task/_history").get_json()
    assert {e["resource"]["id"] for e in history["entry"]} == {world.ids["tx1"]}
    assert world.maker_a("GET", "/fhir/_history").status_code == 403


def test_manufacturer_sees_a_pseudonymised_patient(world: World) -> None:
    patient = world.maker_a("GET", f"/fhir/Patient/{world.ids['px1']}").get_json()
    assert set(patient) <= {"resourceType", "id", "meta", "identifier", "birthDate"}
    assert patient["identifier"] == [{"system": COI, "value": "COI-FR-69-000101"}]
    assert patient["birthDate"] == "1968-11-02"
    searched = world.maker_a("GET", "/fhir/Patient").get_json()["entry"][0]["resource"]
    assert searched == patient
    request = world.maker_a("GET", f"/fhir/ServiceRequest/{world.ids['srx1']}").get_json()
    assert "display" not in request["subject"]
    # A manufacturer without birthDate in its configuration does not get it.
    other = world.maker_b("GET", f"/fhir/Patient/{world.ids['py1']}").get_json()
    assert set(other) == {"resourceType", "id", "meta", "identifier"}


def test_a_subset_of_the_pseudonymised_view_never_brings_hidden_elements_back(world: World) -> None:
    """_summary and _elements choose among what the manufacturer may see, never beyond it."""
    url = f"/fhir/Patient/{world.ids['px1']}"
    for query in ("_elements=name,address,text", "_summary=text", "_summary=true", "_summary=data"):
        for response in (
            world.maker_a("GET", f"{url}?{query}"),
            world.maker_a("GET", f"/fhir/Patient?{query}"),
        ):
            assert response.status_code == 200, query
            text = response.get_data(as_text=True)
            assert "Martin" not in text and "Sophie" not in text and "Lyon" not in text, query
            assert "2680169123456" not in text, query
    named = world.maker_a("GET", f"{url}?_elements=name").get_json()
    assert set(named) == {"resourceType", "id", "meta"} and named["meta"]["tag"][-1]["code"] == "SUBSETTED"


def test_manufacturer_cannot_order_patients_by_hidden_elements(world: World) -> None:
    # Manufacturer B does not see birth dates: an order by them would tell it who is older.
    assert world.maker_b("GET", "/fhir/Patient?_sort=birthdate").status_code == 403
    assert world.maker_b("GET", "/fhir/Patient?_sort=-birthdate").status_code == 403
    assert world.maker_b("GET", "/fhir/Patient?_sort=-_lastUpdated").status_code == 200
    # Manufacturer A sees them (its registration lists birthDate), so it may sort by them.
    assert _ids(world.maker_a("GET", "/fhir/Patient?_sort=birthdate")) == {world.ids["px1"]}
    # Orders carry no hidden dates: sorting Tasks stays open.
    assert world.maker_b("GET", "/fhir/Task?_sort=-authored-on").status_code == 200
    # Every key counts; and identifiers may be searched (chain of identity) but not sorted by: the
    # order would depend on the INS too.
    assert world.maker_b("GET", "/fhir/Patient?_sort=_id,family").status_code == 403
    assert world.maker_b("GET", "/fhir/Patient?_sort=_id&_sort=-birthdate").status_code == 403
    assert world.maker_a("GET", "/fhir/Patient?_sort=identifier").status_code == 403
    assert world.maker_b("GET", "/fhir/Patient?_sort=-_lastUpdated,_id").status_code == 200


def test_manufacturer_cannot_search_patients_by_hidden_elements(world: World) -> None:
    for query in (
        "family=martin",
        "name=sophie",
        "identifier=urn:oid:1.2.250.1.213.1.4.8|2680169123456",
        "address-city=Lyon",
        "telecom=0478000000",
        "phone=0478000000",
        "email=sophie.martin@example.org",
        "death-date=2026",
        f"identifier:of-type=urn:x|INS-NIR|{COI}",
    ):
        assert world.maker_a("GET", f"/fhir/Patient?{query}").status_code == 403, query
    # A logical reference may carry a patient's INS: no search by it, on any type or through a chain
    for path in (
        "Task?patient:identifier=urn:oid:1.2.250.1.213.1.4.8|2680169123456",
        "Task?focus:identifier=2680169123456",
        "Task?focus:ServiceRequest.subject:identifier=2680169123456",
    ):
        assert world.maker_a("GET", f"/fhir/{path}").status_code == 403, path
    assert _ids(world.maker_a("GET", f"/fhir/Patient?identifier={COI}|COI-FR-69-000101")) == {
        world.ids["px1"]
    }


def test_manufacturer_updates_milestone_of_its_task_only(world: World) -> None:
    task = world.maker_a("GET", f"/fhir/Task/{world.ids['tx1']}").get_json()
    task["businessStatus"] = {"text": "in-manufacturing"}
    task["status"] = "in-progress"
    assert world.maker_a("PUT", f"/fhir/Task/{task['id']}", task).status_code == 200
    assert world.hospital_x("GET", f"/fhir/Task/{task['id']}").get_json()["businessStatus"]["text"] == (
        "in-manufacturing"
    )
    stolen = dict(task, owner={"reference": "Organization/mfr-b"})
    assert world.maker_a("PUT", f"/fhir/Task/{task['id']}", stolen).status_code == 403
    other = world.admin("GET", f"/fhir/Task/{world.ids['ty1']}").get_json()
    assert world.maker_a("PUT", f"/fhir/Task/{other['id']}", other).status_code == 403
    assert world.maker_a("DELETE", f"/fhir/Task/{task['id']}").status_code == 403


def test_manufacturer_result_linked_to_its_order_is_shared_with_the_hospital(world: World) -> None:
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "viable CAR+ T cells"},
        "basedOn": [{"reference": f"ServiceRequest/{world.ids['srx1']}"}],
        "valueQuantity": {"value": 4.8e8, "unit": "cells"},
    }
    created = world.maker_a("POST", "/fhir/Observation", observation)
    assert created.status_code == 201, created.get_data(as_text=True)
    obs_id = created.get_json()["id"]
    assert world.hospital_x("GET", f"/fhir/Observation/{obs_id}").status_code == 200
    assert world.hospital_y("GET", f"/fhir/Observation/{obs_id}").status_code == 404
    assert world.maker_b("GET", f"/fhir/Observation/{obs_id}").status_code == 404
    # Pointing at someone else's order is refused.
    observation["basedOn"] = [{"reference": f"ServiceRequest/{world.ids['sry1']}"}]
    assert world.maker_a("POST", "/fhir/Observation", observation).status_code == 403
    assert world.maker_a("POST", "/fhir/Patient", {"resourceType": "Patient"}).status_code == 403


def test_a_conditional_write_is_no_oracle_for_hidden_patient_elements(world: World) -> None:
    """If-None-Exist answers 'found' or 'created': through a chain it could test a patient's INS."""
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "viable CAR+ T cells"},
        "basedOn": [{"reference": f"ServiceRequest/{world.ids['srx1']}"}],
        "subject": {"reference": f"Patient/{world.ids['px1']}"},
    }
    ins = "urn:oid:1.2.250.1.213.1.4.8|2680169123456"
    probe = world.maker_a(
        "POST", "/fhir/Observation", observation, If_None_Exist=f"subject:Patient.identifier={ins}"
    )
    assert probe.status_code == 403, probe.get_data(as_text=True)
    # The same through a transaction's conditional reference.
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {**observation, "subject": {"reference": f"Patient?identifier={ins}"}},
                "request": {"method": "POST", "url": "Observation"},
            }
        ],
    }
    assert world.maker_a("POST", "/fhir", bundle).status_code == 403
    # By chain-of-identity identifier it works as for a search.
    coi = f"{COI}|COI-FR-69-000101"
    created = world.maker_a(
        "POST", "/fhir/Observation", observation, If_None_Exist=f"subject:Patient.identifier={coi}"
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    again = world.maker_a(
        "POST", "/fhir/Observation", observation, If_None_Exist=f"subject:Patient.identifier={coi}"
    )
    assert again.status_code == 200 and again.get_json()["id"] == created.get_json()["id"]


def test_manufacturer_transaction_entries_are_checked_one_by_one(world: World) -> None:
    other = world.admin("GET", f"/fhir/Task/{world.ids['ty1']}").get_json()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": other, "request": {"method": "PUT", "url": f"Task/{other['id']}"}}],
    }
    assert world.maker_a("POST", "/fhir", bundle).status_code == 403
    read = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"request": {"method": "GET", "url": f"Patient/{world.ids['py1']}"}}],
    }
    assert world.maker_a("POST", "/fhir", read).status_code == 404
    search = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": "Task"}}],
    }
    inner = world.maker_a("POST", "/fhir", search).get_json()["entry"][0]["resource"]
    assert {e["resource"]["id"] for e in inner.get("entry", [])} == {world.ids["tx1"]}


# -- hospital X against hospital Y ---------------------------------------------------------------------


def test_hospital_cannot_see_another_hospitals_patients(world: World) -> None:
    py1 = world.ids["py1"]
    assert world.hospital_x("GET", f"/fhir/Patient/{py1}").status_code == 404
    assert world.hospital_x("GET", f"/fhir/Patient/{py1}/_history/1").status_code == 404
    assert world.hospital_x("GET", f"/fhir/Patient/{py1}/_history").status_code == 404
    assert _ids(world.hospital_x("GET", "/fhir/Patient")) == {world.ids["px1"], world.ids["px2"]}
    assert _ids(world.hospital_x("GET", "/fhir/Patient?family=petit")) == set()
    assert _ids(world.hospital_y("GET", "/fhir/Patient")) == {py1}
    history = world.hospital_x("GET", "/fhir/Patient/_history").get_json()
    assert py1 not in {e["resource"]["id"] for e in history["entry"]}


def test_hospital_cannot_write_another_hospitals_resources(world: World) -> None:
    patient = world.admin("GET", f"/fhir/Patient/{world.ids['py1']}").get_json()
    patient["gender"] = "male"
    assert world.hospital_x("PUT", f"/fhir/Patient/{patient['id']}", patient).status_code == 403
    # For hospital X the patient does not exist: a delete of it succeeds as one of nothing (http.html
    # delete), and changes nothing, as the read below shows.
    assert world.hospital_x("DELETE", f"/fhir/Patient/{patient['id']}").status_code == 204
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": patient, "request": {"method": "PUT", "url": f"Patient/{patient['id']}"}}],
    }
    assert world.hospital_x("POST", "/fhir", bundle).status_code == 403
    assert world.admin("GET", f"/fhir/Patient/{patient['id']}").get_json()["gender"] == "female"


def test_if_none_match_cannot_probe_the_version_of_another_hospitals_resource(world: World) -> None:
    # The organisation check comes before the precondition: a 412 for the version listed (403 for the
    # others) would tell hospital X, one PUT per guess, at which version hospital Y's patient is.
    patient = world.admin("GET", f"/fhir/Patient/{world.ids['py1']}").get_json()
    for tags in ('W/"1"', 'W/"2"', "*"):
        response = world.hospital_x("PUT", f"/fhir/Patient/{patient['id']}", patient, If_None_Match=tags)
        assert response.status_code == 403, tags
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "resource": patient,
                "request": {"method": "PUT", "url": f"Patient/{patient['id']}", "ifNoneMatch": 'W/"1"'},
            }
        ],
    }
    (entry,) = world.hospital_x("POST", "/fhir", bundle).get_json()["entry"]
    assert entry["response"]["status"].startswith("403")


def test_conditional_create_cannot_probe_another_hospital(world: World) -> None:
    response = world.hospital_x(
        "POST",
        "/fhir/Patient",
        {"resourceType": "Patient"},
        If_None_Exist="identifier=urn:oid:1.2.250.1.213.1.4.8|2550275111222",
    )
    assert response.status_code == 201  # Y's patient with that INS stays invisible: a new one is made
    assert response.get_json()["id"] != world.ids["py1"]


def test_conditional_reference_in_a_transaction_cannot_reach_another_hospital(world: World) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {
                    "resourceType": "ServiceRequest",
                    "status": "active",
                    "intent": "order",
                    "subject": {"reference": "Patient?identifier=urn:oid:1.2.250.1.213.1.4.8|2550275111222"},
                },
                "request": {"method": "POST", "url": "ServiceRequest"},
            }
        ],
    }
    assert world.hospital_x("POST", "/fhir", bundle).status_code == 412


def test_admin_sees_everything(world: World) -> None:
    assert len(_ids(world.admin("GET", "/fhir/Patient"))) == 3


def test_include_never_brings_in_what_the_client_cannot_see(world: World) -> None:
    # A hospital-X ServiceRequest that points at hospital Y's patient: X must not get Y's patient by _include.
    request = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{world.ids['py1']}"},
    }
    assert world.hospital_x("POST", "/fhir/ServiceRequest", request).status_code == 201
    bundle = world.hospital_x("GET", "/fhir/ServiceRequest?_include=ServiceRequest:subject").get_json()
    included = {e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "include"}
    assert world.ids["py1"] not in included
    assert world.ids["px1"] in included
    # The manufacturer's include gives the pseudonymised patient of its own order only.
    own = world.maker_a("GET", "/fhir/Task?_include=Task:patient").get_json()
    patients = [e["resource"] for e in own["entry"] if e["search"]["mode"] == "include"]
    assert [p["id"] for p in patients] == [world.ids["px1"]]
    assert "name" not in patients[0]
    # Iterating from its order's request reaches the same patient, pseudonymised, and nothing else.
    url = "/fhir/Task?_include=Task:focus&_include:iterate=ServiceRequest:subject"
    iterated = world.maker_a("GET", url).get_json()
    reached = {
        e["resource"]["id"]: e["resource"] for e in iterated["entry"] if e["search"]["mode"] == "include"
    }
    assert set(reached) == {world.ids["srx1"], world.ids["px1"]}
    assert "name" not in reached[world.ids["px1"]] and "display" not in reached[world.ids["srx1"]]["subject"]


def _order_of_b_about_px1(world: World):  # type: ignore[no-untyped-def]
    """Manufacturer B's order about hospital X's patient px1, written by an administrator."""
    order = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "for": {"reference": f"Patient/{world.ids['px1']}"},
        "owner": {"reference": "Organization/mfr-b"},
    }
    created = world.admin("POST", "/fhir/Task", order)
    assert created.status_code == 201, created.data
    return created


def test_revinclude_never_brings_in_what_the_client_cannot_see(world: World) -> None:
    # Another manufacturer's order about the same patient: manufacturer A sees the patient, not that order.
    created = _order_of_b_about_px1(world)
    bundle = world.maker_a("GET", "/fhir/Patient?_revinclude=Task:patient").get_json()
    included = [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "include"]
    assert included == [world.ids["tx1"]]
    everything = world.admin(
        "GET", f"/fhir/Patient?_id={world.ids['px1']}&_revinclude=Task:patient"
    ).get_json()
    assert {e["resource"]["id"] for e in everything["entry"] if e["search"]["mode"] == "include"} == {
        world.ids["tx1"],
        created.get_json()["id"],
    }
    # Iterated, the same rule holds at every step.
    walked = world.maker_a("GET", "/fhir/Patient?_revinclude:iterate=Task:patient").get_json()
    assert [e["resource"]["id"] for e in walked["entry"] if e["search"]["mode"] == "include"] == [
        world.ids["tx1"]
    ]
    mine = world.hospital_y("GET", "/fhir/ServiceRequest?_revinclude=Task:focus").get_json()
    assert [e["resource"]["id"] for e in mine["entry"] if e["search"]["mode"] == "include"] == [
        world.ids["ty1"]
    ]


def test_a_chained_search_never_reveals_what_the_client_cannot_see(app, world: World) -> None:  # type: ignore[no-untyped-def]
    coi = f"{COI}|COI-FR-69-000101"
    # Manufacturer A finds its order by its patient's chain-of-identity number...
    assert _ids(world.maker_a("GET", f"/fhir/Task?patient.identifier={coi}")) == {world.ids["tx1"]}
    # ...but may not search through the patient on what it cannot see.
    for query in (
        "patient.identifier=urn:oid:1.2.250.1.213.1.4.8|2680169123456",
        "patient.family=martin",
        "subject:Patient.gender=female",
    ):
        assert world.maker_a("GET", f"/fhir/Task?{query}").status_code == 403, query
    # Nor through a longer chain: the rules hold at the patient, whichever link reaches it.
    for query in (
        "focus:ServiceRequest.patient.family=martin",
        "focus:ServiceRequest.subject:Patient.identifier=urn:oid:1.2.250.1.213.1.4.8|2680169123456",
        "focus:ServiceRequest.subject:Patient.organization.name=x",
    ):
        assert world.maker_a("GET", f"/fhir/Task?{query}").status_code == 403, query
    # A client that sees a resource but not what it points to must not learn anything about the target
    # through a chain. Sharing rules make the target of an order visible to its organisations, so the
    # state is set up directly: manufacturer B's order about A's patient, B's label then taken off the
    # patient (as a revoked share would).
    from sqlalchemy import delete, select

    from adapter.store.schema import resource_access, resources

    created = _order_of_b_about_px1(world).get_json()["id"]
    assert _ids(world.maker_b("GET", f"/fhir/Task?patient.identifier={coi}")) == {created}
    engine = app.extensions["cart_adapter"].engine
    with engine.begin() as connection:
        pk = connection.execute(select(resources.c.pk).where(resources.c.res_id == world.ids["px1"])).scalar()
        connection.execute(
            delete(resource_access).where(
                resource_access.c.resource_pk == pk, resource_access.c.label.like("%mfr-b%")
            )
        )
    assert world.maker_b("GET", f"/fhir/Patient/{world.ids['px1']}").status_code == 404
    assert created in _ids(world.maker_b("GET", "/fhir/Task"))
    assert _ids(world.maker_b("GET", f"/fhir/Task?patient.identifier={coi}")) == set()
    assert _ids(world.admin("GET", f"/fhir/Task?patient.identifier={coi}")) == {world.ids["tx1"], created}
    # A hospital: only its own patients, so nothing of hospital Y's.
    assert _ids(world.hospital_x("GET", "/fhir/Task?patient.family=petit")) == set()
    assert _ids(world.hospital_y("GET", "/fhir/Task?patient.family=petit")) == {world.ids["ty1"]}


def test_has_never_reveals_what_refers_to_a_resource_out_of_sight(world: World) -> None:
    # An order of manufacturer B about hospital X's patient, written by an administrator: hospital X
    # sees its patient, not that order; _has must not tell X that such an order exists.
    created = _order_of_b_about_px1(world).get_json()["id"]
    assert world.hospital_x("GET", f"/fhir/Task/{created}").status_code == 404
    query = "/fhir/Patient?_has:Task:patient:owner=Organization/mfr-b"
    assert _ids(world.hospital_x("GET", query)) == set()
    # The administrator sees both of B's orders: this one and hospital Y's.
    assert _ids(world.admin("GET", query)) == {world.ids["px1"], world.ids["py1"]}
    assert _ids(world.hospital_x("GET", "/fhir/Patient?_has:Task:patient:owner=Organization/mfr-a")) == {
        world.ids["px1"]
    }
    # Manufacturers search patients by chain-of-identity identifier only, so not by what refers to them.
    assert world.maker_a("GET", "/fhir/Patient?_has:Task:patient:status=requested").status_code == 403
    nested = "/fhir/Patient?_has:ServiceRequest:subject:_has:Task:focus:owner=Organization/mfr-b"
    assert world.maker_a("GET", nested).status_code == 403
    # Nested, the same holds at every level: B's order pointing at X's request stays out of X's sight.
    order = world.admin("GET", f"/fhir/Task/{created}").get_json()
    order["focus"] = {"reference": f"ServiceRequest/{world.ids['srx1']}"}
    assert world.admin("PUT", f"/fhir/Task/{created}", order).status_code == 200
    assert _ids(world.admin("GET", nested)) == {world.ids["px1"], world.ids["py1"]}
    assert _ids(world.hospital_x("GET", nested)) == set()


# -- the pseudonymised view, unit level ----------------------------------------------------------------


def _manufacturer_guard():  # type: ignore[no-untyped-def]
    from adapter.security.clients import Client
    from adapter.security.scopes import ScopeSet
    from adapter.security.tenancy import AccessGuard, Principal

    client = Client("mfr", "manufacturer", ScopeSet.parse("system/Task.rs"), organization="Organization/m")
    return AccessGuard(Principal(client, "system/Task.rs"))


def test_a_stored_resource_with_nothing_to_strip_is_served_as_stored() -> None:
    stored = '{"resourceType":"Task","id":"t1","owner":{"reference":"Organization/m"},"note":[{"text":"x"}]}'
    assert _manufacturer_guard().present("Task", stored) is stored


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (
            '{"resourceType":"Task","id":"t1","for":{"reference":"Patient/p","display":"Sophie Martin"}}',
            {"resourceType": "Task", "id": "t1", "for": {"reference": "Patient/p"}},
        ),
        (
            '{"resourceType":"Task","id":"t1","text":{"status":"generated","div":"<div>Sophie</div>"}}',
            {"resourceType": "Task", "id": "t1"},
        ),
        # A contained Patient is pseudonymised like any Patient (its id stays, so "#p" still resolves);
        # other contained resources lose their reference displays.
        (
            '{"resourceType":"Task","id":"t1","contained":[{"resourceType":"Patient","id":"p",'
            '"name":[{"family":"Martin"}],"identifier":[{"system":"urn:oid:1.2.250.1.213.1.4.8","value":"1"}]},'
            '{"resourceType":"ServiceRequest","id":"s","status":"active","intent":"order",'
            '"subject":{"reference":"#p","display":"Sophie Martin"}}]}',
            {
                "resourceType": "Task",
                "id": "t1",
                "contained": [
                    {"resourceType": "Patient", "id": "p"},
                    {
                        "resourceType": "ServiceRequest",
                        "id": "s",
                        "status": "active",
                        "intent": "order",
                        "subject": {"reference": "#p"},
                    },
                ],
            },
        ),
        # A display without a reference is a coding's display, not a name: it stays.
        (
            '{"resourceType":"Task","id":"t1","code":{"coding":[{"code":"x","display":"Apheresis"}]}}',
            {"resourceType": "Task", "id": "t1", "code": {"coding": [{"code": "x", "display": "Apheresis"}]}},
        ),
    ],
)
def test_names_are_stripped_from_what_a_manufacturer_sees(stored: str, expected: dict) -> None:
    import json

    assert json.loads(_manufacturer_guard().present("Task", stored)) == expected


def test_json_patch_follows_the_update_rules_and_is_refused_to_pseudonymised_views(world: World) -> None:
    patch = b'[{"op": "replace", "path": "/status", "value": "in-progress"}]'
    task_url = f"/fhir/Task/{world.ids['tx1']}"
    # A manufacturer sees names stripped: a patch would apply to elements it cannot see, and a failing
    # `test` operation would tell it what they hold.
    refused = world.maker_a("PATCH", task_url, patch, Content_Type="application/json-patch+json")
    assert refused.status_code == 403
    assert "PUT" in refused.get_json()["issue"][0]["diagnostics"]
    # The hospital that wrote the order patches it; the other hospital does not see it.
    other = world.hospital_y("PATCH", task_url, patch, Content_Type="application/json-patch+json")
    assert other.status_code == 404
    done = world.hospital_x("PATCH", task_url, patch, Content_Type="application/json-patch+json")
    assert done.status_code == 200, done.get_data(as_text=True)
    assert world.admin("GET", task_url).get_json()["status"] == "in-progress"
    # The same rules for a FHIRPath Patch.
    fhirpath = dump_json(fixtures.fhirpath_replace("Task.status", {"valueCode": "completed"})).encode()
    assert world.maker_a("PATCH", task_url, fhirpath, Content_Type="application/fhir+json").status_code == 403
    assert (
        world.hospital_y("PATCH", task_url, fhirpath, Content_Type="application/fhir+json").status_code == 404
    )
    assert (
        world.hospital_x("PATCH", task_url, fhirpath, Content_Type="application/fhir+json").status_code == 200
    )
    assert world.admin("GET", task_url).get_json()["status"] == "completed"
    # Conditionally, a resource out of sight is not a match (404, not 412 or a patch).
    by_order = "/fhir/Task?identifier=https://cart-adapter.example.org/order|ORD-X-1"
    hidden = world.hospital_y("PATCH", by_order, fhirpath, Content_Type="application/fhir+json")
    assert hidden.status_code == 404


def test_a_manufacturer_puts_back_its_view_without_erasing_what_it_cannot_see(world: World) -> None:
    """The manufacturer's view of a Task has no reference displays; updating the milestone from that
    view is allowed, and the stored Task keeps the hospital's displays."""
    task = world.admin("GET", f"/fhir/Task/{world.ids['tx1']}").get_json()
    task["for"]["display"] = "Sophie Martin"
    narrative = {
        "status": "generated",
        "div": '<div xmlns="http://www.w3.org/1999/xhtml">Commande CAR-T de Sophie Martin</div>',
    }
    task["text"] = narrative
    # A contained Patient (as some EHRs send a snapshot of the patient with the order).
    contained = {"resourceType": "Patient", "id": "snapshot", "name": [{"family": "Martin"}]}
    task["contained"] = [contained]
    task["input"] = [{"type": {"text": "patient snapshot"}, "valueReference": {"reference": "#snapshot"}}]
    assert world.hospital_x("PUT", f"/fhir/Task/{task['id']}", task).status_code == 200
    view = world.maker_a("GET", f"/fhir/Task/{task['id']}").get_json()
    assert "display" not in view["for"] and "text" not in view
    assert view["contained"] == [{"resourceType": "Patient", "id": "snapshot"}]
    view["businessStatus"] = {"text": "manufacturing"}
    response = world.maker_a("PUT", f"/fhir/Task/{task['id']}", view)
    assert response.status_code == 200, response.get_data(as_text=True)
    answered = response.get_data(as_text=True)
    assert "Sophie" not in answered and "Martin" not in answered
    stored = world.admin("GET", f"/fhir/Task/{task['id']}").get_json()
    assert stored["for"] == {"reference": task["for"]["reference"], "display": "Sophie Martin"}
    assert stored["businessStatus"] == {"text": "manufacturing"}
    assert stored["text"] == narrative and stored["contained"] == [contained]
    assert stored["meta"]["versionId"] == "3"
    # The contained Patient cannot be rewritten through the manufacturer's view either.
    view = world.maker_a("GET", f"/fhir/Task/{task['id']}").get_json()
    view["contained"] = [{"resourceType": "Patient", "id": "snapshot", "name": [{"family": "Autre"}]}]
    assert world.maker_a("PUT", f"/fhir/Task/{task['id']}", view).status_code == 200
    assert world.admin("GET", f"/fhir/Task/{task['id']}").get_json()["contained"] == [contained]
    # Changing what the order is about stays refused, display or not.
    view = world.maker_a("GET", f"/fhir/Task/{task['id']}").get_json()
    view["for"] = {"reference": f"Patient/{world.ids['px2']}"}
    assert world.maker_a("PUT", f"/fhir/Task/{task['id']}", view).status_code == 403


def test_an_order_referring_to_its_patient_by_ins_is_still_shared_with_its_manufacturer(world: World) -> None:
    """The order's conditional reference holds its entry back until the Bundle's other writes are done
    (http.html); the Task pointing at the order waits with it, or the order would be written after the
    Task and miss the label that lets the Task's manufacturer see it."""
    request, task = order_and_task("unused", "Organization/mfr-a", "ORD-X-COND")
    request["subject"] = {"reference": "Patient?identifier=urn:oid:1.2.250.1.213.1.4.8|2680169123456"}
    task["focus"] = {"reference": "urn:uuid:0b8a4c1e-7f53-4a0e-9d42-3c5e8f1a2b64"}
    del task["for"]  # only the order holds the conditional reference
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0b8a4c1e-7f53-4a0e-9d42-3c5e8f1a2b64",
                "resource": request,
                "request": {"method": "POST", "url": "ServiceRequest"},
            },
            {"resource": task, "request": {"method": "POST", "url": "Task"}},
        ],
    }
    response = world.hospital_x("POST", "/fhir", bundle)
    assert response.status_code == 200, response.data
    order_location = response.get_json()["entry"][0]["response"]["location"]
    order_id = order_location.split("/ServiceRequest/", 1)[1].split("/")[0]
    order = world.maker_a("GET", f"/fhir/ServiceRequest/{order_id}")
    assert order.status_code == 200, order.data
    assert order.get_json()["subject"] == {"reference": f"Patient/{world.ids['px1']}"}
