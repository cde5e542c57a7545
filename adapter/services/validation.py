"""The $validate operation: a resource (or a Parameters with resource and profile) in, issues out."""

from __future__ import annotations

from typing import Any

from adapter.errors import InvalidRequestError, Issue
from adapter.security.tenancy import AccessGuard
from adapter.validation.gate import is_resource_type, validator


def _from_parameters(body: dict) -> tuple[Any, list[str]]:
    resource, profiles = None, []
    parameters = body.get("parameter") or []
    if not isinstance(parameters, list):
        raise InvalidRequestError("Parameters.parameter must be an array", expression="Parameters.parameter")
    for parameter in parameters:
        if not isinstance(parameter, dict):
            continue
        if parameter.get("name") == "resource":
            resource = parameter.get("resource")
        elif parameter.get("name") == "profile":
            value = parameter.get("valueUri") or parameter.get("valueCanonical")
            if isinstance(value, str):
                profiles.append(value)
    return resource, profiles


def validate_operation(
    body: Any, res_type: str | None, profiles: list[str], *, guard: AccessGuard
) -> list[Issue]:
    """Issues of the posted resource against its type, its meta.profile and the requested profiles.

    Validation reads no stored data, so every authenticated client may use it (interface engineers too).
    """
    if res_type is not None and not is_resource_type(res_type):
        raise InvalidRequestError(f"unknown resource type {res_type!r}", expression=res_type)
    if not isinstance(body, dict):
        raise InvalidRequestError("$validate takes a resource or a Parameters resource")
    resource = body
    if body.get("resourceType") == "Parameters" and res_type != "Parameters":
        resource, extra = _from_parameters(body)
        profiles = [*profiles, *extra]
        if not isinstance(resource, dict):
            raise InvalidRequestError(
                "the Parameters must carry the resource to validate in parameter 'resource'"
            )
    if res_type is not None and resource.get("resourceType") != res_type:
        raise InvalidRequestError(
            f"the resource is a {resource.get('resourceType')}, not a {res_type}", expression="resourceType"
        )
    issues = validator().validate(resource, profiles or None)
    if not issues:
        issues = [Issue("information", "informational", "no issues found")]
    return issues
