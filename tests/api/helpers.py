"""Small helpers for API tests: send FHIR JSON exactly as a client would."""

from __future__ import annotations

import base64

from adapter.fhirio.jsonio import dump_json

FHIR_JSON = "application/fhir+json"


def send(client, method: str, url: str, resource: object | None = None, **headers: str):  # type: ignore[no-untyped-def]
    data = dump_json(resource) if resource is not None else None
    hdrs = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    hdrs.update({k.replace("_", "-"): v for k, v in headers.items()})
    return client.open(url, method=method, data=data, headers=hdrs)


def created(client, resource: dict) -> dict:  # type: ignore[no-untyped-def]
    """POST a resource to its type and return what the server stored (the create must succeed)."""
    response = send(client, "POST", f"/fhir/{resource['resourceType']}", resource)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def json_patch_binary(operations: bytes) -> dict:
    """A JSON Patch as a Bundle PATCH entry carries it: a Binary of application/json-patch+json."""
    return {
        "resourceType": "Binary",
        "contentType": "application/json-patch+json",
        "data": base64.b64encode(operations).decode(),
    }


def issue_of(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    """The first issue of the OperationOutcome a response must carry with `status`."""
    assert response.status_code == status, response.get_data(as_text=True)
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome", outcome
    return outcome["issue"][0]
