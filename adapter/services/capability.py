"""The CapabilityStatement and TerminologyCapabilities: what this server really supports, generated from
what is implemented."""

from __future__ import annotations

from functools import cache

from adapter.definitions import compartments, resource_types
from adapter.errors import AdapterError, InvalidRequestError, MethodNotAllowedError, UnknownOperationError
from adapter.search.params import params_for, registry, selection
from adapter.validation.gate import code_systems_checked, supported_profiles
from adapter.validation.terminology import SYNTAX_SYSTEMS

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


def _instance(base_url: str) -> dict:
    """What both statements say of the server itself (kind instance: this installation)."""
    return {
        "publisher": "cart-adapter",
        "kind": "instance",
        "software": {"name": "cart-adapter", "version": SOFTWARE_VERSION},
        "implementation": {"description": "cart-adapter FHIR R4 server", "url": base_url},
    }


def capabilities(base_url: str, now: str, modes: list[str]) -> dict:
    """What GET [base]/metadata answers for its `mode` parameter (http.html capabilities).

    `full` (or none) gives the CapabilityStatement, and so does `normative`: "servers MAY ignore the mode
    parameter and return a CapabilityStatement resource". `terminology` gives the TerminologyCapabilities.
    Raises InvalidRequestError for another mode, or several: the client asked for something else.
    """
    if len(modes) > 1:
        raise InvalidRequestError("mode is given more than once", expression="mode")
    mode = modes[0] if modes else "full"
    if mode in ("full", "normative"):
        return capability_statement(base_url, now)
    if mode == "terminology":
        return terminology_capabilities(base_url, now)
    raise InvalidRequestError(
        f"mode {mode!r} is not one of full, normative or terminology", expression="mode"
    )


def terminology_capabilities(base_url: str, now: str) -> dict:
    """The code systems the validator knows: every write is checked against its bindings with them.

    Grammar-defined systems (MIME types, languages, currencies) are checked by their syntax. The server
    offers no terminology operations, so expansion, validateCode, translation and closure are absent.
    """
    systems = [
        {"uri": url, **({"version": [{"code": version}]} if version else {})}
        for url, version in code_systems_checked()
    ]
    listed = {system["uri"] for system in systems}
    systems.extend({"uri": url} for url in sorted(SYNTAX_SYSTEMS) if url not in listed)
    return {
        "resourceType": "TerminologyCapabilities",
        "status": "active",
        "date": now,
        **_instance(base_url),
        "description": (
            "The code systems whose codes this server checks when a write binds an element to a value "
            "set drawing on them: the CodeSystems it holds in full (FHIR R4 core and the loaded profile "
            f"packages), and {', '.join(sorted(SYNTAX_SYSTEMS))} by their syntax. "
            "No terminology operation ($expand, $validate-code, $lookup, $translate) is offered."
        ),
        "codeSystem": systems,
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
            **({"operation": [_EVERYTHING]} if res_type == "Patient" else {}),
        }
        for res_type in sorted(resource_types())
    ]
    resources = [_audit_event() if r["type"] == "AuditEvent" else r for r in resources]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": now,
        **_instance(base_url),
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "application/fhir+xml"],
        "patchFormat": ["application/json-patch+json", "application/fhir+json", "application/fhir+xml"],
        "rest": [
            {
                "mode": "server",
                "resource": resources,
                "interaction": [{"code": "transaction"}, {"code": "batch"}, {"code": "history-system"}],
                **({"compartment": listed} if (listed := _compartments()) else {}),
                "operation": [
                    {
                        "name": "validate",
                        "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate",
                    }
                ],
            }
        ],
    }


_EVERYTHING = {
    "name": "everything",
    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
    "documentation": "GET [base]/Patient/[id]/$everything (_since, _type): the patient, its compartment, "
    "the Tasks whose for is the patient, and what those refer to; up to 1000 of each, not paged.",
}


def _compartments() -> list[str]:
    """The compartments searchable here ([base]/Patient/[id]/[type]): those whose parameters are all
    indexed (a parameter selection may leave some out)."""
    return [
        compartment.url
        for _, compartment in sorted(compartments().items())
        if all(p == "{def}" or p in params_for(t) for t, codes in compartment.members.items() for p in codes)
    ]


# Operations this server offers: how they are invoked, with which methods, and whether a path (its
# segments after the base) is one of the places they are offered at.
_OPERATIONS = {
    "$validate": (
        "POST [base]/$validate or [base]/[type]/$validate",
        ("POST",),
        lambda path: len(path) in (1, 2),
    ),
    "$everything": (
        "GET [base]/Patient/[id]/$everything",
        ("GET", "HEAD"),
        lambda path: len(path) == 3 and path[0] == "Patient",
    ),
}


def unknown_operation(path: str, method: str) -> AdapterError | None:
    """The error for a request naming an operation ($name) where or how this server does not offer it:
    404 where it has none, 405 (with the methods to use) where it is offered with another method; None
    when the path names no operation, or names one offered there with that method."""
    segments = path.split("/fhir/", 1)[-1].split("/")
    for segment in segments:
        if segment.startswith("$"):
            name = segment[:64]
            offered = _OPERATIONS.get(segment)
            if offered is None:
                return UnknownOperationError(
                    f"operation {name} is not supported by this server (GET [base]/metadata lists its "
                    "operations)"
                )
            usage, methods, offered_at = offered
            if segments[-1] != segment or not offered_at(segments):
                return UnknownOperationError(f"operation {name} is not offered here; use {usage}")
            if method not in methods:
                return MethodNotAllowedError(f"operation {name} is invoked as {usage}", allowed=methods)
            return None
    return None
