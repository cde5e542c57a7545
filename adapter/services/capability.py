"""The CapabilityStatement: what this server really supports, generated from what is implemented."""

from __future__ import annotations

from functools import cache

from adapter.definitions import resource_types
from adapter.search.params import params_for, registry, selection
from adapter.validation.gate import supported_profiles

SOFTWARE_VERSION = "0.1.0"


def _search_params(res_type: str) -> list[dict]:
    out = [
        {"name": "_id", "type": "token"},
        {"name": "_lastUpdated", "type": "date"},
    ]
    out.extend({"name": code, "type": p.type} for code, p in sorted(params_for(res_type).items()))
    return out


def _rev_includes() -> dict[str, list[str]]:
    return _rev_includes_of(selection())


@cache
def _rev_includes_of(_selected: frozenset[str] | None) -> dict[str, list[str]]:
    """For each type, the `Source:param` reference parameters that name it as a target."""
    out: dict[str, list[str]] = {}
    for source, params in sorted(registry().items()):
        for code, param in sorted(params.items()):
            if param.type == "reference":
                for target in param.targets:
                    out.setdefault(target, []).append(f"{source}:{code}")
    return out


_AUDIT_SEARCH = ("agent-name", "entity", "date")


def _audit_event() -> dict:
    """AuditEvent is the server's own audit trail (adapter.services.audit_trail), written by the server
    only: administrators read it and search it by these three parameters, and nothing else."""
    return {
        "type": "AuditEvent",
        "versioning": "no-version",
        "readHistory": False,
        "updateCreate": False,
        "conditionalCreate": False,
        "conditionalRead": "not-supported",
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
        "interaction": [{"code": "read"}, {"code": "search-type"}],
        # agent-name (the client id), entity (Type/id) and date (ge/gt): the audit trail refuses the rest.
        "searchParam": [p for p in _search_params("AuditEvent") if p["name"] in _AUDIT_SEARCH],
    }


def capability_statement(base_url: str, now: str) -> dict:
    interactions = [
        {"code": code}
        for code in (
            "read",
            "vread",
            "update",
            "patch",
            "delete",
            "history-instance",
            "history-type",
            "create",
            "search-type",
        )
    ]
    resources = [
        {
            "type": res_type,
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalRead": "full-support",
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "interaction": interactions,
            **({"supportedProfile": list(profiles)} if (profiles := supported_profiles(res_type)) else {}),
            "searchInclude": [
                f"{res_type}:{code}"
                for code, p in sorted(params_for(res_type).items())
                if p.type == "reference"
            ],
            **({"searchRevInclude": rev} if (rev := _rev_includes().get(res_type)) else {}),
            "searchParam": _search_params(res_type),
        }
        for res_type in sorted(resource_types())
    ]
    resources = [_audit_event() if r["type"] == "AuditEvent" else r for r in resources]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": now,
        "publisher": "cart-adapter",
        "kind": "instance",
        "software": {"name": "cart-adapter", "version": SOFTWARE_VERSION},
        "implementation": {"description": "cart-adapter FHIR R4 server", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "application/fhir+xml"],
        "patchFormat": ["application/json-patch+json", "application/fhir+json", "application/fhir+xml"],
        "rest": [
            {
                "mode": "server",
                "resource": resources,
                "interaction": [{"code": "transaction"}, {"code": "batch"}, {"code": "history-system"}],
                "operation": [
                    {
                        "name": "validate",
                        "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate",
                    }
                ],
            }
        ],
    }
