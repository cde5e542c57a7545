"""Small helpers for API tests: send FHIR JSON exactly as a client would."""

from __future__ import annotations

from adapter.fhirio.jsonio import dump_json

FHIR_JSON = "application/fhir+json"


def send(client, method: str, url: str, resource: object | None = None, **headers: str):  # type: ignore[no-untyped-def]
    data = dump_json(resource) if resource is not None else None
    hdrs = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    hdrs.update({k.replace("_", "-"): v for k, v in headers.items()})
    return client.open(url, method=method, data=data, headers=hdrs)
