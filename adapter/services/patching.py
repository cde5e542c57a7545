"""The FHIR patch interaction with JSON Patch (RFC 6902) documents, applied with the jsonpatch library."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import jsonpointer

from adapter.errors import InvalidRequestError, UnprocessableResourceError

JSON_PATCH = "application/json-patch+json"


def apply_json_patch(resource: dict, document: Any, res_type: str, res_id: str) -> dict:
    """`resource` with the operations of `document` applied, in order (a new dict).

    Error messages name the operation and its path, never a value of the resource: the library's own
    messages can quote the document, and what a client may read is decided elsewhere.

    Raises:
        InvalidRequestError: the document is not a JSON Patch (400).
        UnprocessableResourceError: an operation cannot apply to this resource, a `test` fails, or the
            patch would change the resource's type or id (422).
    """
    if not isinstance(document, list) or not document:
        raise InvalidRequestError("a JSON Patch document is a non-empty JSON array of operations")
    # One copy, patched in place: a failed operation leaves it half-patched, and it is dropped.
    current: Any = copy.deepcopy(resource)
    for number, operation in enumerate(document, start=1):
        where = f"operation {number}"
        if isinstance(operation, dict):
            where += f" ({operation.get('op')!s} {operation.get('path')!s})"
            for key in ("path", "from"):
                pointer = operation.get(key)
                if isinstance(pointer, str) and pointer and not pointer.startswith("/"):
                    raise InvalidRequestError(
                        f"invalid JSON Patch document, {where}: {key} must start with /"
                    )
        try:
            current = jsonpatch.JsonPatch([operation]).apply(current, in_place=True)
        except jsonpatch.InvalidJsonPatch as exc:
            raise InvalidRequestError(f"invalid JSON Patch document, {where}: {exc}") from None
        except jsonpatch.JsonPatchTestFailed:
            raise UnprocessableResourceError(
                f"JSON Patch {where}: the test failed; nothing was changed"
            ) from None
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException):
            raise UnprocessableResourceError(
                f"JSON Patch {where} cannot apply to {res_type}/{res_id}: the path does not exist or "
                "does not hold what the operation needs"
            ) from None
    if not isinstance(current, dict):
        raise UnprocessableResourceError("the JSON Patch replaces the resource with something else")
    for element, expected in (("resourceType", res_type), ("id", res_id)):
        if current.get(element) != expected:
            raise UnprocessableResourceError(f"a patch may not change {element}", expression=element)
    return current


# Narrative statuses whose text is made from the data alone (and its extensions): once the data changes
# it is stale, and whoever shows the resource can make it again from the data.
_DERIVED_NARRATIVE = ("generated", "extensions")


def settle_narrative(before: dict, after: dict, res_type: str) -> dict:
    """The patched resource with its narrative made safe (http.html patch: the server SHALL ensure that
    the narrative is not clinically unsafe after the patch).

    A patch that changes the data but leaves the narrative as it was would keep a text describing the
    data before it: a generated one is dropped; an `additional` one, which says more than the data, can
    be neither kept nor dropped, so the patch is refused. A patch that changes the narrative itself, or
    only meta, keeps what it leaves.

    Raises:
        UnprocessableResourceError: the narrative holds additional content the patch would leave stale.
    """
    text = after.get("text")
    if not isinstance(text, dict) or text != before.get("text") or _data(before) == _data(after):
        return after
    status = text.get("status")
    if status in _DERIVED_NARRATIVE:
        return {key: value for key, value in after.items() if key != "text"}
    if status == "additional":
        raise UnprocessableResourceError(
            f"the patch changes the data of this {res_type} but not its narrative, whose content goes "
            "beyond the data (status additional) and would then be out of date: patch text as well, "
            "or update the resource with PUT",
            expression=f"{res_type}.text",
        )
    return after


def _data(resource: dict) -> dict:
    return {key: value for key, value in resource.items() if key not in ("text", "meta")}
