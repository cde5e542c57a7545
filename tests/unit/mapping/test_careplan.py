"""The pathway CarePlan: one per COI, six steps, each message updating its step without undoing the others."""

from __future__ import annotations

from adapter.mapping import MappingRegistry
from adapter.mapping.merge import merge_activity, merge_resources, union_period
from tests.unit.mapping.conftest import MAPPINGS, FakeLookup

STEP = "https://cart-adapter.example.org/fhir/CodeSystem/pathway-step"
SIU = (MAPPINGS / "fixtures/hl7v2-siu/appointments.hl7").read_bytes()
RAS = (MAPPINGS / "fixtures/hl7v2-ras/administrations.hl7").read_bytes()
CSV = (MAPPINGS / "fixtures/csv-tracking/tracking-sheet.csv").read_bytes()


def activity(step: str, status: str, **detail: object) -> dict:
    return {"detail": {"code": {"coding": [{"system": STEP, "code": step}]}, "status": status, **detail}}


def steps(careplan: dict) -> dict[str, tuple[str, dict | None]]:
    return {
        a["detail"]["code"]["coding"][0]["code"]: (a["detail"]["status"], a["detail"].get("scheduledPeriod"))
        for a in careplan["activity"]
    }


def careplans(bundle: dict, coi: str = "COI-FR-69-000042") -> list[dict]:
    return [
        e
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "CarePlan"
        and {"system": "https://cart-adapter.example.org/pathway", "value": coi}
        in e["resource"]["identifier"]
    ]


def test_a_step_without_information_never_overwrites() -> None:
    done = activity("apheresis", "completed", scheduledPeriod={"start": "2025-04-07"})
    assert merge_activity(done, activity("apheresis", "not-started")) == done
    assert merge_activity(activity("apheresis", "not-started"), done) == done


def test_a_step_never_moves_backwards_but_side_exits_apply() -> None:
    done = activity("infusion", "completed", scheduledPeriod={"start": "2025-05-10T10:02:00+02:00"})
    late_plan = activity("infusion", "scheduled", scheduledPeriod={"start": "2025-05-09T10:00:00+02:00"})
    assert merge_activity(done, late_plan)["detail"]["status"] == "completed"
    assert merge_activity(done, late_plan)["detail"]["scheduledPeriod"] == done["detail"]["scheduledPeriod"]
    cancelled = activity("infusion", "cancelled")
    assert merge_activity(late_plan, cancelled)["detail"]["status"] == "cancelled"
    assert merge_activity(cancelled, late_plan)["detail"]["status"] == "cancelled"
    assert merge_activity(cancelled, done)["detail"]["status"] == "completed"


def test_a_rescheduled_step_takes_the_new_dates() -> None:
    first = activity("apheresis", "scheduled", scheduledPeriod={"start": "2025-04-07T08:30:00+02:00"})
    moved = activity("apheresis", "scheduled", scheduledPeriod={"start": "2025-04-09T08:30:00+02:00"})
    assert merge_activity(first, moved) == moved


def test_two_accounts_of_a_step_in_progress_span_both() -> None:
    day1 = activity("lymphodepletion", "in-progress", scheduledPeriod={"start": "2025-05-05T09:00:00+02:00"})
    day3 = activity(
        "lymphodepletion",
        "completed",
        scheduledPeriod={"start": "2025-05-07T09:00:00+02:00", "end": "2025-05-07"},
    )
    merged = merge_activity(day1, day3)["detail"]
    assert merged["status"] == "completed"
    assert merged["scheduledPeriod"] == {"start": "2025-05-05T09:00:00+02:00", "end": "2025-05-07"}


def test_periods_compare_instants_not_text() -> None:
    a = {"start": "2025-10-26T02:30:00+02:00"}
    b = {"start": "2025-10-26T02:15:00+01:00"}  # later: 01:15 UTC against 00:30 UTC
    assert union_period(a, b) == a


def test_the_stored_careplan_keeps_its_id_created_and_identifiers() -> None:
    stored = {
        "resourceType": "CarePlan",
        "id": "server-id",
        "created": "2025-02-20",
        "identifier": [{"system": "s", "value": "legacy"}],
        "activity": [activity("apheresis", "completed")],
    }
    incoming = {
        "resourceType": "CarePlan",
        "id": "mapped-id",
        "created": "2025-05-01",
        "identifier": [{"system": "p", "value": "COI"}],
        "activity": [activity("apheresis", "not-started"), activity("infusion", "completed")],
    }
    merged = merge_resources("careplan-steps", stored, incoming)
    assert merged["id"] == "server-id" and merged["created"] == "2025-02-20"
    assert merged["identifier"] == [{"system": "p", "value": "COI"}, {"system": "s", "value": "legacy"}]
    assert [a["detail"]["status"] for a in merged["activity"]] == ["completed", "completed"]


def test_messages_of_one_file_make_one_careplan(registry: MappingRegistry) -> None:
    (entry,) = careplans(registry.map("hl7v2-ras", RAS).bundle)
    found = steps(entry["resource"])
    assert found["lymphodepletion"] == ("in-progress", {"start": "2025-05-05T09:00:00+02:00"})
    assert found["infusion"] == (
        "completed",
        {"start": "2025-05-10T10:02:00+02:00", "end": "2025-05-10T10:31:00+02:00"},
    )
    assert found["post-infusion-stay"] == ("in-progress", {"start": "2025-05-10T10:02:00+02:00"})
    assert found["apheresis"] == ("not-started", None)


def test_a_later_message_updates_the_stored_careplan_step(registry: MappingRegistry) -> None:
    store = FakeLookup()
    first = registry.map("hl7v2-siu", SIU, lookup=store).bundle
    store.store(first)
    second = registry.map("hl7v2-ras", RAS, lookup=store).bundle
    (entry,) = careplans(second)
    found = steps(entry["resource"])
    assert found["apheresis"][0] == "scheduled"  # from the appointment, kept
    assert found["lymphodepletion"] == (
        "in-progress",
        {"start": "2025-05-05T09:00:00+02:00"},
    )  # actual beats plan
    assert found["infusion"][0] == "completed"
    assert entry["request"] == {
        "method": "PUT",
        "url": "CarePlan?identifier=https://cart-adapter.example.org/pathway|COI-FR-69-000042",
        "ifMatch": 'W/"1"',
    }
    store.store(second)
    third = registry.map("csv-tracking", CSV, lookup=store).bundle
    found = steps(careplans(third)[0]["resource"])
    assert {step: status for step, (status, _) in found.items()} == {
        "apheresis": "completed",
        "bridging-therapy": "completed",
        "lymphodepletion": "completed",
        "infusion": "completed",
        "post-infusion-stay": "completed",
        "long-term-follow-up": "in-progress",
    }
    store.store(third)
    # the appointment message sent again after all that changes nothing
    replay = careplans(registry.map("hl7v2-siu", SIU, lookup=store).bundle)[0]["resource"]
    assert steps(replay) == found


def test_without_a_lookup_the_bundle_carries_the_message_view(registry: MappingRegistry) -> None:
    (entry,) = careplans(registry.map("hl7v2-siu", SIU).bundle)
    assert "ifMatch" not in entry["request"]
    assert steps(entry["resource"])["infusion"] == ("not-started", None)
