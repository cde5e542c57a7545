"""The FHIR instance and type interactions (create, read, vread, update, delete) on a ResourceStore.

These functions run inside the caller's transaction, so that a REST call and a Bundle entry share them.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl

from adapter.definitions import resource_types
from adapter.errors import (
    ConflictError,
    ForbiddenError,
    GoneError,
    InvalidRequestError,
    Issue,
    NotFoundError,
    PreconditionFailedError,
    UnprocessableResourceError,
)
from adapter.fhirio.jsonio import dump_json, parse_stored_json
from adapter.fhirio.subsetting import is_subsetted
from adapter.search.dates import format_instant
from adapter.search.extract import index_rows, local_reference
from adapter.search.query import parse_search
from adapter.security.tenancy import AccessGuard, reference_texts
from adapter.services.fhirpath_patch import apply_fhirpath_patch, is_fhirpath_patch
from adapter.services.patching import apply_json_patch, settle_narrative
from adapter.services.preconditions import (
    NO_PRECONDITIONS,
    Preconditions,
    parse_if_match,
    refuse_if_match,
    refuse_if_none_match,
)
from adapter.store.ids import new_resource_id
from adapter.store.resources import ResourceStore, StoredResource
from adapter.validation.gate import check_for_write

# Version numbers are 32-bit signed integers in the database (resources.version_id): PostgreSQL casts a
# searched version to that type and fails on a larger one.
MAX_VERSION = 2**31 - 1
ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")

Clock = Callable[[], int]


def system_clock_us() -> int:
    return time.time_ns() // 1000


@dataclass(frozen=True)
class WriteOutcome:
    """What a write did: `status` is 201 for a creation, 200 otherwise."""

    status: int
    stored: StoredResource
    created: bool
    # Validation warnings and information: they do not block the write but are worth telling.
    warnings: tuple[Issue, ...] = ()


def check_type(res_type: str) -> None:
    if res_type not in resource_types():
        raise NotFoundError(f"unknown resource type {res_type!r}", expression=res_type)


def is_type(res_type: str) -> bool:
    return res_type in resource_types()


def check_id(res_id: str) -> None:
    if not ID_RE.match(res_id):
        raise InvalidRequestError(f"{res_id!r} is not a valid FHIR id", expression="id")


# Stand-ins for meta.versionId and meta.lastUpdated in a body prepared before its transaction; random, so
# that no submitted content can contain them, and replaced in the text once the values are known.
_VERSION_MARK = f"version-{uuid.uuid4().hex}"
_UPDATED_MARK = f"updated-{uuid.uuid4().hex}"


def _stamp(resource: dict, res_type: str, res_id: str, version_id: str, last_updated: str) -> dict:
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = version_id
    meta["lastUpdated"] = last_updated
    out = {"resourceType": res_type, "id": res_id, "meta": meta}
    out.update((k, v) for k, v in resource.items() if k not in ("resourceType", "id", "meta"))
    return out


@dataclass(frozen=True)
class PreparedBody:
    """What a write stores, worked out from the body alone: the JSON text (version and time left open),
    the search index rows and the references. Computed before the write transaction opens, so that
    SQLite's single write lock covers the SQL and not this work."""

    res_type: str
    res_id: str
    source: dict
    stamped: dict
    text: str
    rows: list
    refs: list[tuple[str, str]]

    def fits(self, res_type: str, res_id: str, resource: dict) -> bool:
        return self.source is resource and self.res_id == res_id and self.res_type == res_type

    def content(self, version_id: int, last_updated_us: int) -> str:
        text = self.text.replace(_VERSION_MARK, str(version_id), 1)
        return text.replace(_UPDATED_MARK, format_instant(last_updated_us), 1)


def prepare(res_type: str, res_id: str, resource: dict) -> PreparedBody:
    texts = list(reference_texts(resource))
    for text in texts:
        if is_conditional_reference(text):
            # A transaction resolves these before it gets here; anywhere else one would be stored as
            # a reference to nothing.
            raise UnprocessableResourceError(
                f"conditional reference {text!r}: conditional references are resolved in transaction "
                "Bundles only; send a literal reference, or this write in a transaction",
                expression=reference_path(resource, text, res_type),
            )
    stamped = _stamp(resource, res_type, res_id, _VERSION_MARK, _UPDATED_MARK)
    # The meta elements stand in for values unknown yet; no search parameter reads them.
    return PreparedBody(
        res_type,
        res_id,
        resource,
        stamped,
        dump_json(stamped),
        index_rows(stamped),
        [local for text in texts if (local := local_reference(text))],
    )


def is_conditional_reference(text: str) -> bool:
    """`Patient?identifier=...`: a search in place of a reference, as transactions accept."""
    return text[:1].isupper() and "?" in text[1:]


def reference_path(node: Any, text: str, path: str) -> str | None:
    """Where in the resource the reference `text` is (for the error), as Type.element[.element...]."""
    if isinstance(node, dict):
        if node.get("reference") == text:
            return f"{path}.reference"
        for key, value in node.items():
            found = reference_path(value, text, f"{path}.{key}")
            if found:
                return found
    elif isinstance(node, list):
        for n, item in enumerate(node):
            found = reference_path(item, text, f"{path}[{n}]")
            if found:
                return found
    return None


def _prepared(prepared: PreparedBody | None, res_type: str, res_id: str, resource: dict) -> PreparedBody:
    if prepared is not None and prepared.fits(res_type, res_id, resource):
        return prepared
    return prepare(res_type, res_id, resource)


def _check_body(resource: dict, res_type: str, validated: tuple[Issue, ...] | None = None) -> list[Issue]:
    """Shape checks, then validation, unless the caller validated already (outside the transaction)."""
    if not isinstance(resource, dict):
        raise InvalidRequestError("the body must be a FHIR resource (a JSON object)")
    if resource.get("resourceType") != res_type:
        raise InvalidRequestError(
            f"resourceType {resource.get('resourceType')!r} does not match the URL ({res_type})",
            expression="resourceType",
        )
    if is_subsetted(resource):
        # What _summary or _elements returned lacks elements: stored, it would erase them.
        raise UnprocessableResourceError(
            "the resource is tagged SUBSETTED (a _summary or _elements view): it lacks elements and would "
            "erase them if stored; send the complete resource",
            expression="meta.tag",
        )
    return list(validated) if validated is not None else check_for_write(resource)


def pre_validate(resource: object, res_type: str) -> tuple[Issue, ...] | None:
    """Validate before a write transaction opens, so that no database lock is held while validating.

    Returns the warnings, or None when the body is not a resource of `res_type` (the interaction then
    reports that itself). Raises UnprocessableResourceError like check_for_write.
    """
    if not isinstance(resource, dict) or resource.get("resourceType") != res_type:
        return None
    return tuple(check_for_write(resource))


def _lock_name(res_type: str, args: list[tuple[str, str]]) -> str:
    return res_type + "?" + "&".join(f"{k}={v}" for k, v in sorted(args))


def search_lock(res_type: str, query_string: str) -> str:
    """The lock key a conditional interaction's search takes (find_matches), for taking it in advance."""
    return _lock_name(res_type, parse_qsl(query_string, keep_blank_values=True))


def creation_lock(res_type: str, res_id: str) -> str:
    """The lock key of an update as create of `res_type/res_id` (update)."""
    return f"{res_type}/{res_id}"


# The server acting for itself (migrations, internal jobs): no scope or tenancy restriction.
SERVER = AccessGuard(None)


def find_matches(
    store: ResourceStore, res_type: str, query_string: str, *, guard: AccessGuard = SERVER, limit: int = 2
) -> list[StoredResource]:
    """Resources matching a conditional interaction's search; unknown parameters are errors here.

    Only resources the caller may see count, and it may search only on what it may see (as in a search),
    so a conditional write cannot be used to probe others' data or hidden elements.
    """
    args = parse_qsl(query_string, keep_blank_values=True)
    if not args:
        raise InvalidRequestError("a conditional interaction needs search parameters")
    query = parse_search(res_type, args, strict=True)
    guard.check_search(res_type, query.conditions, [k.code for k in query.sort_keys])
    query.visible_labels = guard.visible_labels
    store.lock_key(_lock_name(res_type, args))
    return store.search(query, snapshot=None, after=None, limit=limit)


def _referenced_labels(
    store: ResourceStore, refs: list[tuple[str, str]], guard: AccessGuard
) -> tuple[set[str], dict]:
    """Labels of the resources this one points to that the caller can see, and those resources."""
    found = store.labels_by_reference(refs)
    visible = {ref: (pk, labels) for ref, (pk, labels) in found.items() if guard.can_see(labels)}
    merged: set[str] = set()
    for _, labels in visible.values():
        merged |= labels
    return merged, visible


def _after_write(
    store: ResourceStore,
    guard: AccessGuard,
    stored: StoredResource,
    stamped: dict,
    visible_refs: dict,
    referenced: set[str],
    existing_labels: set[str],
) -> None:
    labels = guard.labels_for(stored.res_type, stamped, referenced)
    store.add_labels(stored.pk, labels, existing_labels)
    if stored.res_type == "Task":
        # What an order points to (its ServiceRequest, patient, products) becomes visible to the
        # organisations of the order, so that the manufacturer can read what it needs to make it.
        task_labels = labels | existing_labels
        for pk, target_labels in visible_refs.values():
            store.add_labels(pk, task_labels, target_labels)


def create(
    store: ResourceStore,
    res_type: str,
    resource: dict,
    *,
    clock: Clock,
    if_none_exist: str | None = None,
    new_id: str | None = None,
    guard: AccessGuard = SERVER,
    validated: tuple[Issue, ...] | None = None,
    prepared: PreparedBody | None = None,
) -> WriteOutcome:
    """Create with a server-assigned id (or `new_id`, used by transactions that resolved it already)."""
    check_type(res_type)
    guard.require(res_type, "c")
    warnings = _check_body(resource, res_type, validated)
    if if_none_exist:
        matches = find_matches(store, res_type, if_none_exist, guard=guard)
        if len(matches) > 1:
            raise PreconditionFailedError(
                f"If-None-Exist {if_none_exist!r} matches several {res_type} resources"
            )
        if matches:
            return WriteOutcome(200, matches[0], created=False)
    res_id = new_id or (prepared.res_id if prepared is not None else new_resource_id(res_type))
    return _insert(
        store, res_type, res_id, resource, clock, guard=guard, warnings=warnings, prepared=prepared
    )


def _insert(
    store: ResourceStore,
    res_type: str,
    res_id: str,
    resource: dict,
    clock: Clock,
    method: str = "POST",
    guard: AccessGuard = SERVER,
    warnings: list[Issue] | tuple[Issue, ...] = (),
    prepared: PreparedBody | None = None,
) -> WriteOutcome:
    body = _prepared(prepared, res_type, res_id, resource)
    referenced, visible_refs = _referenced_labels(store, body.refs, guard)
    guard.check_create(res_type, resource, referenced)
    now = clock()
    stored = store.insert(res_type, res_id, body.content(1, now), now, body.rows, method=method)
    _after_write(store, guard, stored, body.stamped, visible_refs, referenced, set())
    return WriteOutcome(201, stored, created=True, warnings=tuple(warnings))


def _visible_current(
    store: ResourceStore, res_type: str, res_id: str, guard: AccessGuard, *, for_update: bool = False
) -> StoredResource | None:
    current = store.current(res_type, res_id, for_update=for_update)
    if current is None or not guard.can_see(store.labels(current.pk)):
        return None
    return current


def presented(stored: StoredResource, guard: AccessGuard) -> StoredResource:
    """The stored version as the caller may see it (pseudonymised for a manufacturer)."""
    if not guard.pseudonymises or stored.content is None:
        return stored
    return replace(stored, content=guard.present(stored.res_type, stored.content))


def read(
    store: ResourceStore,
    res_type: str,
    res_id: str,
    *,
    guard: AccessGuard = SERVER,
    for_update: bool = False,
) -> StoredResource:
    """The current version; `for_update` locks it until the transaction ends (a write based on it)."""
    check_type(res_type)
    guard.require(res_type, "r")
    current = _visible_current(store, res_type, res_id, guard, for_update=for_update)
    if current is None:
        raise NotFoundError(f"{res_type}/{res_id} is not known", expression=res_type)
    if current.deleted:
        raise GoneError(f"{res_type}/{res_id} was deleted (version {current.version_id})")
    return current


def vread(
    store: ResourceStore, res_type: str, res_id: str, version: str, *, guard: AccessGuard = SERVER
) -> StoredResource:
    check_type(res_type)
    guard.require(res_type, "r")
    # Only ASCII digits within the 32-bit column: "²" passes isdigit() but not int(), and a larger
    # number overflows the database driver. Neither is a version that can exist.
    known = version.isascii() and version.isdigit() and int(version) <= MAX_VERSION
    found = store.version(res_type, res_id, int(version)) if known else None
    if found is None or not guard.can_see(store.labels(found.pk)):
        raise NotFoundError(f"{res_type}/{res_id}/_history/{version} is not known")
    if found.deleted:
        raise GoneError(f"{res_type}/{res_id} version {version} is a deletion")
    return found


def update(
    store: ResourceStore,
    res_type: str,
    res_id: str,
    resource: dict,
    *,
    clock: Clock,
    preconditions: Preconditions = NO_PRECONDITIONS,
    guard: AccessGuard = SERVER,
    validated: tuple[Issue, ...] | None = None,
    prepared: PreparedBody | None = None,
) -> WriteOutcome:
    """Update, or create with the client's id when the resource does not exist (update-as-create);
    If-None-Match (`preconditions`): 412 when the resource exists in a version it names (`*`: create
    only)."""
    check_type(res_type)
    check_id(res_id)
    guard.require(res_type, "u")
    warnings = _check_body(resource, res_type, validated)
    if resource.get("id") != res_id:
        raise InvalidRequestError(
            f"the resource id {resource.get('id')!r} does not match the URL id {res_id!r}", expression="id"
        )
    expected = parse_if_match(preconditions.if_match) if preconditions.if_match else None
    current = store.current(res_type, res_id, for_update=True)
    if current is None:
        # Two clients creating the same new id would both see nothing; the lock makes one of them wait.
        store.lock_key(creation_lock(res_type, res_id))
        current = store.current(res_type, res_id, for_update=True)
    if current is None:
        if expected is not None:
            raise PreconditionFailedError(f"If-Match given but {res_type}/{res_id} does not exist")
        guard.require(res_type, "c")
        guard.check_update(res_type, False, None, resource, set())
        return _insert(
            store,
            res_type,
            res_id,
            resource,
            clock,
            method="PUT",
            guard=guard,
            warnings=warnings,
            prepared=prepared,
        )
    current_labels = store.labels(current.pk)
    previous = _parsed(current) if guard.pseudonymises else None
    guard.check_update(res_type, True, previous, resource, current_labels)
    restored = guard.restore_hidden(res_type, previous, resource)
    if restored is not resource:
        resource, prepared = restored, None  # the body prepared from the client's text is stale
    # After the organisation check: a 412 would tell a client that may not write this resource its version.
    refuse_if_none_match(current, preconditions.if_none_match)
    refuse_if_match(current, preconditions.if_match)
    body = _prepared(prepared, res_type, res_id, resource)
    referenced, visible_refs = _referenced_labels(store, body.refs, guard)
    now = max(clock(), current.last_updated_us + 1)
    content = body.content(current.version_id + 1, now)
    stored = store.replace(current, content, now, body.rows, method="PUT")
    _after_write(store, guard, stored, body.stamped, visible_refs, referenced, current_labels)
    return WriteOutcome(
        201 if current.deleted else 200, stored, created=current.deleted, warnings=tuple(warnings)
    )


def _parsed(stored: StoredResource) -> dict | None:
    from adapter.fhirio.jsonio import parse_json

    return parse_json(stored.content, max_depth=1000) if stored.content else None


def _at_most_one(
    store: ResourceStore, res_type: str, query_string: str, what: str, *, guard: AccessGuard
) -> StoredResource | None:
    """The one resource a conditional interaction's search finds, or None; several is 412."""
    matches = find_matches(store, res_type, query_string, guard=guard)
    if len(matches) > 1:
        raise PreconditionFailedError(f"{what} {query_string!r} matches several {res_type} resources")
    return matches[0] if matches else None


def _single_match(
    store: ResourceStore, res_type: str, query_string: str, what: str, *, guard: AccessGuard
) -> str:
    """The id of the one resource a conditional interaction's search finds: none is 404, several 412."""
    match = _at_most_one(store, res_type, query_string, what, guard=guard)
    if match is None:
        raise NotFoundError(f"{what} {query_string!r} matches no {res_type}")
    return match.res_id


def _check_patch(res_type: str, guard: AccessGuard) -> None:
    """Whether the caller may patch resources of this type at all."""
    check_type(res_type)
    guard.require(res_type, "u")
    if guard.pseudonymises:
        # The patch would apply to elements this client cannot see, and a failing `test` would tell it
        # what they hold.
        raise ForbiddenError(f"this client sees {res_type} pseudonymised and cannot patch it; use PUT")


def conditional_patch_target(
    store: ResourceStore, res_type: str, query_string: str, *, guard: AccessGuard = SERVER
) -> str:
    """The id a conditional patch would patch (none is 404, several 412), checked as `patch` checks."""
    _check_patch(res_type, guard)
    return _single_match(store, res_type, query_string, "conditional patch", guard=guard)


def refuse_unmatched_existing_id(
    store: ResourceStore, res_type: str, query_string: str, body_id: object
) -> None:
    """A conditional update that matched nothing asks for a create (an update as create with the body's
    id): 409 when a resource of that id exists, which the search did not find and is not to overwrite."""
    existing = store.current(res_type, body_id) if isinstance(body_id, str) else None
    if existing is not None and not existing.deleted:
        raise ConflictError(
            f"no {res_type} matches {query_string!r}, and {res_type}/{body_id} exists already: "
            "a conditional update that matches nothing creates, it does not overwrite",
            expression="id",
        )


def conditional_delete_target(
    store: ResourceStore, res_type: str, query_string: str, *, guard: AccessGuard = SERVER
) -> str | None:
    """The id a conditional delete would delete: None when nothing matches, 412 for several."""
    check_type(res_type)
    guard.require(res_type, "d")
    match = _at_most_one(store, res_type, query_string, "conditional delete", guard=guard)
    return match.res_id if match else None


def patch(
    store: ResourceStore,
    res_type: str,
    target: str | None,
    document: object,
    *,
    clock: Clock,
    query_string: str | None = None,
    preconditions: Preconditions = NO_PRECONDITIONS,
    guard: AccessGuard = SERVER,
) -> WriteOutcome:
    """Apply a JSON Patch (a list of operations) or a FHIRPath Patch (a Parameters resource) to the
    current version of `target` (or of the single match of `query_string`, a conditional patch) and
    store the result as the next version, validated like an update; without If-Match the version
    patched is the one that must still be current."""
    _check_patch(res_type, guard)  # before any search: a client that may not patch learns nothing
    if target is None:
        if not query_string:
            raise InvalidRequestError("a patch needs [type]/[id] or a conditional URL")
        target = _single_match(store, res_type, query_string, "conditional patch", guard=guard)
    # Locked before it is read (PostgreSQL; SQLite's writers run one at a time): the patch applies to the
    # version that is current when the write runs. Read unlocked, two patches sent at once without
    # If-Match would both apply to the same version, and the one that waited for the other's row lock
    # would fail the If-Match below with a 412 the client never asked for.
    current = read(store, res_type, target, guard=guard, for_update=True)
    stored = parse_stored_json(current.content or "{}")
    if is_fhirpath_patch(document):
        patched = apply_fhirpath_patch(stored, document, res_type, target)  # type: ignore[arg-type]
    else:
        patched = apply_json_patch(stored, document, res_type, target)
    patched = settle_narrative(stored, patched, res_type)
    return update(
        store,
        res_type,
        target,
        patched,
        clock=clock,
        preconditions=replace(preconditions, if_match=preconditions.if_match or f'W/"{current.version_id}"'),
        guard=guard,
        validated=pre_validate(patched, res_type),
    )


def conditional_update(
    store: ResourceStore,
    res_type: str,
    query_string: str,
    resource: dict,
    *,
    clock: Clock,
    preconditions: Preconditions = NO_PRECONDITIONS,
    guard: AccessGuard = SERVER,
    validated: tuple[Issue, ...] | None = None,
) -> WriteOutcome:
    check_type(res_type)
    guard.require(res_type, "u")
    match = _at_most_one(store, res_type, query_string, "conditional update", guard=guard)
    body_id = resource.get("id") if isinstance(resource, dict) else None
    if match is None:
        if body_id:
            refuse_unmatched_existing_id(store, res_type, query_string, body_id)
            return update(
                store,
                res_type,
                body_id,
                resource,
                clock=clock,
                preconditions=preconditions,
                guard=guard,
                validated=validated,
            )
        guard.require(res_type, "c")
        warnings = _check_body(resource, res_type, validated)
        guard.check_update(res_type, False, None, resource, set())
        return _insert(
            store, res_type, new_resource_id(res_type), resource, clock, guard=guard, warnings=warnings
        )
    if body_id and body_id != match.res_id:
        raise InvalidRequestError(
            f"the resource id {body_id!r} differs from the matched resource {match.res_id!r}", expression="id"
        )
    body = dict(resource)
    body["id"] = match.res_id
    return update(
        store,
        res_type,
        match.res_id,
        body,
        clock=clock,
        preconditions=preconditions,
        guard=guard,
        validated=validated,
    )


def delete(
    store: ResourceStore,
    res_type: str,
    res_id: str,
    *,
    clock: Clock,
    preconditions: Preconditions = NO_PRECONDITIONS,
    guard: AccessGuard = SERVER,
) -> StoredResource | None:
    """Logically delete; deleting a deleted resource, or one that does not exist, changes nothing (the
    specification answers both as a success). Returns the deletion version, or None."""
    check_type(res_type)
    check_id(res_id)
    guard.require(res_type, "d")
    current = store.current(res_type, res_id, for_update=True)
    labels = store.labels(current.pk) if current else set()
    if current is None or not guard.can_see(labels):
        # One the caller may not see is, for it, one that does not exist: the same answer.
        if preconditions.if_match:
            raise PreconditionFailedError(f"If-Match given but {res_type}/{res_id} does not exist")
        return None
    guard.check_delete(res_type, labels)
    refuse_if_match(current, preconditions.if_match)
    refuse_if_none_match(current, preconditions.if_none_match)
    if current.deleted:
        return None
    now = max(clock(), current.last_updated_us + 1)
    return store.replace(current, None, now, (), method="DELETE")


def conditional_delete(
    store: ResourceStore,
    res_type: str,
    query_string: str,
    *,
    clock: Clock,
    preconditions: Preconditions = NO_PRECONDITIONS,
    guard: AccessGuard = SERVER,
) -> StoredResource | None:
    """Delete the single match of a search; several matches are refused (conditionalDelete = single).

    If-Match applies to that match, as a conditional update's does; with no match there is no version
    to compare, 412 as for a version-aware delete of a resource that does not exist.
    """
    target = conditional_delete_target(store, res_type, query_string, guard=guard)
    if target is None:
        if preconditions.if_match:
            raise PreconditionFailedError(f"If-Match given but no {res_type} matches {query_string!r}")
        return None
    return delete(
        store,
        res_type,
        target,
        clock=clock,
        preconditions=preconditions,
        guard=guard,
    )
