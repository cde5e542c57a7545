"""AuditEvent records (FHIR R4 AuditEvent) for every access, refused login and write."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from adapter.search.dates import format_instant
from adapter.store.ids import time_ordered_uuid

_REST = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
    "code": "rest",
    "display": "RESTful Operation",
}
_LOGIN = {
    "system": "http://dicom.nema.org/resources/ontology/DCM",
    "code": "110114",
    "display": "User Authentication",
}
_INTERACTION_SYSTEM = "http://hl7.org/fhir/restful-interaction"
CLIENT_SYSTEM = "urn:cart-adapter:client"

# Interaction -> AuditEvent.action (C create, R read/search, U update, D delete, E execute).
ACTIONS = {
    "create": "C",
    "read": "R",
    "vread": "R",
    "update": "U",
    "patch": "U",
    "delete": "D",
    "search-type": "E",
    "history-instance": "R",
    "history-type": "R",
    "history-system": "R",
    "transaction": "E",
    "batch": "E",
    "capabilities": "R",
    "operation": "E",
    "login": "E",
}


@dataclass(frozen=True)
class AuditRecord:
    """What happened in one request, in the terms AuditEvent needs; never the resource content."""

    interaction: str
    status: int
    recorded_us: int
    client_id: str | None = None
    role: str | None = None
    source_address: str | None = None
    entity: str | None = None  # Type/id, or Type for type-level interactions
    query: str | None = None
    request_id: str | None = None
    detail: str | None = None

    @property
    def outcome(self) -> str:
        if self.status < 400:
            return "0"
        if self.status in (401, 403, 404, 409, 410, 412, 422, 400):
            return "4"
        return "8"

    @property
    def action(self) -> str:
        return ACTIONS.get(self.interaction, "E")


def audit_event(record: AuditRecord, event_id: str | None = None) -> dict:
    """The AuditEvent resource for a record."""
    is_login = record.interaction == "login"
    event: dict = {
        "resourceType": "AuditEvent",
        "id": event_id or str(time_ordered_uuid()),
        "type": _LOGIN if is_login else _REST,
        "action": record.action,
        "recorded": format_instant(record.recorded_us),
        "outcome": record.outcome,
    }
    if not is_login:
        event["subtype"] = [{"system": _INTERACTION_SYSTEM, "code": record.interaction}]
    if record.detail:
        event["outcomeDesc"] = record.detail
    agent: dict = {"requestor": True}
    if record.client_id:
        agent["who"] = {"identifier": {"system": CLIENT_SYSTEM, "value": record.client_id}}
        agent["name"] = record.client_id
    if record.role:
        agent["role"] = [{"text": record.role}]
    if record.source_address:
        agent["network"] = {"address": record.source_address, "type": "2"}
    event["agent"] = [agent]
    event["source"] = {"observer": {"display": "cart-adapter"}}
    entity: dict = {}
    if record.entity:
        entity["what"] = {"reference": record.entity} if "/" in record.entity else {"display": record.entity}
    if record.query:
        entity["query"] = base64.b64encode(record.query.encode()).decode()
    if record.request_id:
        entity["detail"] = [{"type": "X-Request-Id", "valueString": record.request_id}]
    if entity:
        event["entity"] = [entity]
    return event
