"""Batch and transaction Bundles (POST [base]), processed as the R4 specification orders them."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from adapter.errors import (
    AdapterError,
    InvalidRequestError,
    Issue,
    MethodNotAllowedError,
    PreconditionFailedError,
    UnprocessableResourceError,
)
from adapter.fhirio.jsonio import dump_json, parse_json
from adapter.fhirio.outcome import operation_outcome
from adapter.fhirio.subsetting import read_subset
from adapter.search.dates import date_range, format_instant
from adapter.security.tenancy import AccessGuard, reference_texts, references
from adapter.services import history, interactions, searching
from adapter.services.interactions import SERVER, Clock, WriteOutcome
from adapter.services.patching import JSON_PATCH
from adapter.services.preconditions import Preconditions, not_modified, refuse_if_match
from adapter.store.ids import new_resource_id
from adapter.store.resources import ResourceStore, StoredResource
from adapter.store.unit_of_work import UnitOfWork
from adapter.validation.gate import check_bundle_entries

_PERMISSION = {"POST": "c", "PUT": "u", "PATCH": "u", "DELETE": "d", "GET": "r", "HEAD": "r"}
_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}


@dataclass(frozen=True)
class EntryResult:
    status: str
    location: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    resource: str | None = None  # JSON text
    outcome: str | None = None  # JSON text of an OperationOutcome
    read: bool = False  # the resource is what a GET entry asked for, returned whatever Prefer says


@dataclass
class _Entry:
    index: int
    method: str
    res_type: str
    res_id: str | None
    query: str | None
    resource: Any
    full_url: str | None
    if_none_exist: str | None
    preconditions: Preconditions  # request.ifMatch and ifNoneMatch
    raw_url: str
    modified_before_us: int | None = None  # the end of the moment request.ifModifiedSince names
    version: str | None = None  # a vread's [vid]
    history: bool = False  # a history of the instance, the type or (res_type "") the system
    new_id: str | None = None
    existing: StoredResource | None = None
    validated: tuple[Issue, ...] | None = None  # warnings, when validated before the transaction
    rewritten: bool = False  # references already rewritten, before the transaction
    prepared: interactions.PreparedBody | None = None


def _fail(index: int, error: AdapterError, *, has_resource: bool = True) -> AdapterError:
    """Prefix each issue of an entry's error with where the entry is in the Bundle. What an issue of an
    entry without a resource (GET, HEAD, DELETE) names, a search or history parameter or the id, is in
    its request.url."""
    prefix = f"Bundle.entry[{index}]"
    error.issues = [
        Issue(
            i.severity,
            i.code,
            f"{prefix}: {i.diagnostics}",
            tuple(_within(prefix, e, has_resource) for e in i.expression) or (prefix,),
        )
        for i in error.issues
    ]
    error.message = error.issues[0].diagnostics
    return error


def _within(prefix: str, expression: str, has_resource: bool) -> str:
    if expression.startswith("Bundle"):
        return expression
    if not has_resource:
        return f"{prefix}.request.url"
    head, _, rest = expression.partition(".")
    if head[:1].isupper():
        return f"{prefix}.resource" + (f".{rest}" if rest else "")
    return f"{prefix}.resource.{expression}"


def _parse_entry(index: int, entry: Any, base: str) -> _Entry:
    if not isinstance(entry, dict):
        raise InvalidRequestError("entry must be an object", expression=f"Bundle.entry[{index}]")
    request = entry.get("request")
    if (
        not isinstance(request, dict)
        or not isinstance(request.get("method"), str)
        or not isinstance(request.get("url"), str)
    ):
        raise InvalidRequestError(
            f"Bundle.entry[{index}].request with method and url is required",
            expression=f"Bundle.entry[{index}].request",
        )
    for key in ("ifNoneExist", "ifMatch", "ifNoneMatch", "ifModifiedSince"):
        # Read later as a query string, ETags and an instant: anything but a string would fail there.
        if request.get(key) is not None and not isinstance(request[key], str):
            raise InvalidRequestError(
                f"Bundle.entry[{index}].request.{key} must be a string",
                expression=f"Bundle.entry[{index}].request.{key}",
            )
    method = request["method"].upper()
    if method not in _ORDER:
        raise InvalidRequestError(
            f"Bundle.entry[{index}].request.method {method!r} is not supported",
            expression=f"Bundle.entry[{index}].request.method",
        )
    url = request["url"]
    if url.startswith(base + "/"):
        url = url[len(base) + 1 :]
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        # Entries act on this server only: an absolute URL must start with its base.
        raise InvalidRequestError(
            f"Bundle.entry[{index}].request.url {url!r} is not on this server (base {base})",
            expression=f"Bundle.entry[{index}].request.url",
        )
    path = parts.path.strip("/").split("/") if parts.path.strip("/") else []
    if not path:
        raise InvalidRequestError(
            f"Bundle.entry[{index}].request.url {url!r} names no resource type",
            expression=f"Bundle.entry[{index}].request.url",
        )
    res_type, res_id, version, history_of = _route(index, method, path, url)
    if method == "POST" and request.get("ifNoneMatch") is not None:
        # A create has no current version to compare; what it may be conditional on is a search.
        raise InvalidRequestError(
            f"Bundle.entry[{index}].request.ifNoneMatch does not apply to a POST (a create); use ifNoneExist",
            expression=f"Bundle.entry[{index}].request.ifNoneMatch",
        )
    resource = entry.get("resource")
    if method in ("POST", "PUT") and not isinstance(resource, dict):
        raise InvalidRequestError(
            f"Bundle.entry[{index}] ({method}) needs a resource", expression=f"Bundle.entry[{index}].resource"
        )
    return _Entry(
        index,
        method,
        res_type,
        res_id,
        parts.query or None,
        resource,
        entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None,
        request.get("ifNoneExist"),
        Preconditions(request.get("ifMatch"), request.get("ifNoneMatch")),
        url,
        _modified_before(index, request.get("ifModifiedSince")),
        version,
        history_of,
    )


_READS = frozenset({"GET", "HEAD"})
# The URL shapes of the interactions an entry may name ("*": a type, id or version) and their methods.
_SHAPES: dict[tuple[str, ...], frozenset[str]] = {
    ("_history",): _READS,
    ("*",): frozenset(_ORDER),
    ("*", "_history"): _READS,
    ("*", "*"): frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"}),
    ("*", "*", "_history"): _READS,
    ("*", "*", "_history", "*"): _READS,
}


def _route(index: int, method: str, path: list[str], url: str) -> tuple[str, str | None, str | None, bool]:
    """(type, id, version, history) of the interaction request.url names, read as the REST routes read a
    URL (a read must not answer for Patient/x/_history, nor a create drop the id of Patient/x): another
    shape is 400, a method the shape does not take 405."""
    shape = tuple("_history" if part == "_history" else "*" for part in path)
    methods = _SHAPES.get(shape)
    if methods is None:
        raise InvalidRequestError(
            f"request.url {url!r} names no interaction: [type], [type]/[id], "
            "[type]/[id]/_history/[vid], [type]/[id]/_history, [type]/_history or _history",
            expression=f"Bundle.entry[{index}].request.url",
        )
    if method not in methods:
        raise MethodNotAllowedError(
            f"{method} {url!r} is not allowed",
            allowed=tuple(sorted(methods)),
            expression=f"Bundle.entry[{index}].request.method",
        )
    res_type = "" if shape == ("_history",) else path[0]
    res_id = path[1] if len(shape) > 1 and shape[1] == "*" else None
    version = path[3] if len(shape) == 4 else None
    return res_type, res_id, version, "_history" in shape and version is None


def _modified_before(index: int, since: str | None) -> int | None:
    if since is None:
        return None
    moment = date_range(since)
    if moment is None or "T" not in since:
        raise InvalidRequestError(
            f"Bundle.entry[{index}].request.ifModifiedSince {since!r} is not an instant",
            expression=f"Bundle.entry[{index}].request.ifModifiedSince",
        )
    return moment[1]


# Elements whose string value is a link the server must rewrite (references, uri/url/uuid/oid values);
# business strings such as Identifier.value are left alone even when they look like a fullUrl.
_LINK_KEYS = frozenset(
    {"reference", "url", "valueUri", "valueUrl", "valueUuid", "valueOid", "valueReference"}
)


class _NeedsDatabase(Exception):
    """Raised while rewriting before the transaction: this entry's links can only be resolved in it."""


def _defer(reference: str) -> str:
    raise _NeedsDatabase(reference)


def _rewrite(
    node: Any, mapping: dict[str, str], resolve: Callable[[str], str], unknown: frozenset[str] = frozenset()
) -> Any:
    """Replace fullUrls of this Bundle by the server's references, and resolve conditional references.

    `unknown` are fullUrls whose server id needs the database (ifNoneExist, conditional update).
    """
    if isinstance(node, list):
        return [
            _rewrite(item, mapping, resolve, unknown) if isinstance(item, dict | list) else item
            for item in node
        ]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if isinstance(value, str):
            if key in _LINK_KEYS:
                if value in mapping:
                    value = mapping[value]
                elif value in unknown:
                    raise _NeedsDatabase(value)
                elif key == "reference" and interactions.is_conditional_reference(value):
                    value = resolve(value)
            elif key == "div":
                if any(url in value for url in unknown):
                    raise _NeedsDatabase(key)
                for old, new in mapping.items():
                    if old in value:
                        value = value.replace(old, new)
            out[key] = value
        elif isinstance(value, dict | list):
            out[key] = _rewrite(value, mapping, resolve, unknown)
        else:
            out[key] = value
    return out


class BundleProcessor:
    """Runs batch and transaction Bundles against the store."""

    def __init__(self, uow: UnitOfWork, *, clock: Clock, default_count: int = 50, max_count: int = 1000):
        self.uow = uow
        self.clock = clock
        self.default_count = default_count
        self.max_count = max_count

    def process(
        self, bundle: Any, base: str, *, guard: AccessGuard = SERVER
    ) -> tuple[str, list[EntryResult]]:
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            raise InvalidRequestError("POST to the base URL takes a Bundle", expression="resourceType")
        kind = bundle.get("type")
        entries = bundle.get("entry") or []
        if not isinstance(entries, list):
            raise InvalidRequestError("Bundle.entry must be a list", expression="Bundle.entry")
        if kind == "transaction":
            return "transaction-response", self._transaction(entries, base, guard)
        if kind == "batch":
            return "batch-response", self._batch(entries, base, guard)
        raise InvalidRequestError(
            f"Bundle.type must be transaction or batch, not {kind!r}", expression="Bundle.type"
        )

    # -- transaction -------------------------------------------------------------------------------
    def _transaction(self, raw_entries: list, base: str, guard: AccessGuard) -> list[EntryResult]:
        parsed = []
        for i, raw in enumerate(raw_entries):
            try:
                parsed.append(_parse_entry(i, raw, base))
            except AdapterError as exc:
                raise _fail(i, exc) from None
        for entry in parsed:
            permission = _PERMISSION.get(entry.method)
            if permission and interactions.is_type(entry.res_type):
                try:
                    guard.require(entry.res_type, permission)
                except AdapterError as exc:
                    raise _fail(entry.index, exc) from None
        # Validated as one Bundle before the write transaction opens: urn:uuid references between
        # entries resolve, every invalid entry is named at once, and no lock is held meanwhile.
        warnings = check_bundle_entries(
            {"resourceType": "Bundle", "type": "transaction", "entry": raw_entries}
        )
        for entry in parsed:
            entry.validated = warnings.get(entry.index, ())
        self._prepare_outside(parsed)
        results: dict[int, EntryResult] = {}
        with self.uow.writing() as store:
            # The locks the entries will need, in one order whatever the order of the entries (see
            # _lock_in_order): the conditional ones before the searches that take them... (not on
            # SQLite, where they would cost a walk over every entry's references for nothing)
            if store.takes_row_locks:
                store.lock_keys(_lock_keys(parsed))
            mapping = self._assign_identities(store, parsed, guard)
            self._check_overlaps(parsed)
            # ...and, once conditional URLs are resolved to ids, the resources the entries change.
            if store.takes_row_locks:
                store.lock_current(_targets(parsed))

            def resolve(reference: str) -> str:
                res_type, _, query = reference.partition("?")
                matches = interactions.find_matches(store, res_type, query, guard=guard)
                if len(matches) != 1:
                    raise PreconditionFailedError(
                        f"conditional reference {reference!r} matches {len(matches)} resources "
                        "(needs exactly one)"
                    )
                return f"{res_type}/{matches[0].res_id}"

            # Conditional references are resolved when their entry runs, not now: http.html processes
            # them after the writes, so that `Patient?identifier=...` finds the Patient an earlier entry
            # of this Bundle creates (a mapped HL7 v2 message creates the patient it then refers to).
            conditional: set[int] = set()
            for entry in parsed:
                if isinstance(entry.resource, dict) and not entry.rewritten:

                    def later(reference: str, index: int = entry.index) -> str:
                        conditional.add(index)
                        return reference

                    try:
                        entry.resource = _rewrite(entry.resource, mapping, later)
                    except AdapterError as exc:
                        raise _fail(entry.index, exc) from None
            _hold_back_their_referrers(parsed, conditional)
            # One lookup for every resource the entries point to, not one per entry.
            store.labels_by_reference(
                ref
                for entry in parsed
                if isinstance(entry.resource, dict)
                for ref in (entry.prepared.refs if entry.prepared else references(entry.resource))
            )
            invalid: list[Issue] = []
            for entry in sorted(parsed, key=lambda e: _run_order(e, conditional)):
                try:
                    if entry.index in conditional:
                        # What the entries run so far wrote is visible to the search (same transaction).
                        entry.resource = _rewrite(entry.resource, {}, resolve)
                    results[entry.index] = self._run(store, entry, base, guard)
                except UnprocessableResourceError as exc:
                    # Keep going: the client gets one 422 naming every invalid entry, not just the first.
                    invalid.extend(_fail(entry.index, exc).issues)
                except AdapterError as exc:
                    raise _fail(entry.index, exc, has_resource=entry.resource is not None) from None
            if invalid:  # raising inside the unit of work rolls every entry back
                raise UnprocessableResourceError(invalid[0].diagnostics, issues=invalid)
        return [results[i] for i in range(len(parsed))]

    @staticmethod
    def _prepare_outside(entries: list[_Entry]) -> None:
        """Ids, rewritten links and stored text of the entries that need no database, before the write
        transaction: on SQLite the write lock is then held for the SQL alone, and workers overlap."""
        for entry in entries:
            if entry.method == "POST" and not entry.if_none_exist:
                entry.new_id = new_resource_id(entry.res_type)
            elif entry.method == "PUT" and not entry.query and entry.res_id:
                entry.new_id = entry.res_id
        mapping: dict[str, str] = {}
        unknown: set[str] = set()
        for entry in entries:
            if entry.full_url and entry.method in ("POST", "PUT"):
                if entry.new_id:
                    mapping.setdefault(entry.full_url, f"{entry.res_type}/{entry.new_id}")
                else:
                    unknown.add(entry.full_url)
        # A fullUrl used twice is refused in the transaction (bdl-7); do not guess which entry it means.
        seen: set[str] = set()
        for entry in entries:
            if entry.full_url in seen:
                unknown.add(entry.full_url)
            if entry.full_url:
                seen.add(entry.full_url)
        frozen = frozenset(unknown)
        for entry in entries:
            if not isinstance(entry.resource, dict):
                continue
            try:
                entry.resource = _rewrite(entry.resource, mapping, _defer, frozen)
            except (_NeedsDatabase, AdapterError):
                continue  # done again in the transaction, which reports errors with their entry
            entry.rewritten = True
            if entry.new_id and entry.resource.get("resourceType") == entry.res_type:
                if entry.method == "POST" or entry.resource.get("id") == entry.new_id:
                    entry.prepared = interactions.prepare(entry.res_type, entry.new_id, entry.resource)

    def _assign_identities(
        self, store: ResourceStore, entries: list[_Entry], guard: AccessGuard
    ) -> dict[str, str]:
        mapping: dict[str, str] = {}
        seen_urls: dict[str, int] = {}
        for entry in entries:
            try:
                if entry.method == "POST":
                    if entry.if_none_exist:
                        matches = interactions.find_matches(
                            store, entry.res_type, entry.if_none_exist, guard=guard
                        )
                        if len(matches) > 1:
                            raise PreconditionFailedError(
                                f"ifNoneExist {entry.if_none_exist!r} matches several"
                            )
                        if matches:
                            entry.existing = matches[0]
                    if entry.existing:
                        entry.new_id = entry.existing.res_id
                    elif entry.new_id is None:
                        entry.new_id = new_resource_id(entry.res_type)
                elif entry.method == "PUT" and entry.query:
                    matches = interactions.find_matches(store, entry.res_type, entry.query, guard=guard)
                    if len(matches) > 1:
                        raise PreconditionFailedError(f"conditional update {entry.query!r} matches several")
                    body_id = entry.resource.get("id")
                    if not matches and body_id:
                        interactions.refuse_unmatched_existing_id(store, entry.res_type, entry.query, body_id)
                    entry.new_id = (
                        matches[0].res_id if matches else (body_id or new_resource_id(entry.res_type))
                    )
                    entry.resource = {**entry.resource, "id": entry.new_id}
                elif entry.method == "PUT":
                    entry.new_id = entry.res_id
                # Conditional DELETE and PATCH are resolved here too, so that _check_overlaps sees the
                # resources they reach; their step then runs on that id.
                elif entry.method == "DELETE" and entry.query and not entry.res_id:
                    entry.new_id = interactions.conditional_delete_target(
                        store, entry.res_type, entry.query, guard=guard
                    )
                elif entry.method == "PATCH" and entry.query and not entry.res_id:
                    entry.new_id = interactions.conditional_patch_target(
                        store, entry.res_type, entry.query, guard=guard
                    )
            except AdapterError as exc:
                raise _fail(entry.index, exc, has_resource=entry.resource is not None) from None
            if entry.full_url and entry.full_url in seen_urls:
                raise _fail(
                    entry.index,
                    InvalidRequestError(
                        f"fullUrl {entry.full_url!r} is also used by entry {seen_urls[entry.full_url]}; "
                        "fullUrl must be unique in a Bundle (bdl-7)",
                        expression="fullUrl",
                    ),
                )
            if entry.full_url:
                seen_urls[entry.full_url] = entry.index
            if entry.new_id and entry.full_url:
                mapping[entry.full_url] = f"{entry.res_type}/{entry.new_id}"
        return mapping

    @staticmethod
    def _check_overlaps(entries: list[_Entry]) -> None:
        seen: dict[str, int] = {}
        for entry in entries:
            if entry.method in ("GET", "HEAD"):
                continue
            ident = entry.new_id or entry.res_id
            if ident is None:
                continue
            key = f"{entry.res_type}/{ident}"
            if key in seen:
                raise _fail(
                    entry.index,
                    InvalidRequestError(
                        f"{key} appears in entries {seen[key]} and {entry.index}; "
                        "a transaction may touch a resource once"
                    ),
                )
            seen[key] = entry.index

    def _run(self, store: ResourceStore, entry: _Entry, base: str, guard: AccessGuard) -> EntryResult:
        if entry.method == "POST":
            if entry.existing is not None:
                return _write_result(base, WriteOutcome(200, entry.existing, created=False), guard)
            outcome = interactions.create(
                store,
                entry.res_type,
                entry.resource,
                clock=self.clock,
                new_id=entry.new_id,
                guard=guard,
                validated=entry.validated,
                prepared=entry.prepared,
            )
            return _write_result(base, outcome, guard)
        if entry.method == "PUT":
            if entry.new_id is None:
                raise InvalidRequestError("PUT needs [type]/[id] or a conditional URL")
            outcome = interactions.update(
                store,
                entry.res_type,
                entry.new_id,
                entry.resource,
                clock=self.clock,
                preconditions=entry.preconditions,
                guard=guard,
                validated=entry.validated,
                prepared=entry.prepared,
            )
            return _write_result(base, outcome, guard)
        if entry.method == "DELETE":
            if entry.res_id or entry.new_id:
                interactions.delete(
                    store,
                    entry.res_type,
                    entry.res_id or entry.new_id,  # type: ignore[arg-type]
                    clock=self.clock,
                    preconditions=entry.preconditions,
                    guard=guard,
                )
            elif entry.query:
                interactions.conditional_delete(
                    store,
                    entry.res_type,
                    entry.query,
                    clock=self.clock,
                    preconditions=entry.preconditions,
                    guard=guard,
                )
            else:
                raise InvalidRequestError("DELETE needs [type]/[id] or a conditional URL")
            return EntryResult("204 No Content")
        if entry.method == "PATCH":
            outcome = interactions.patch(
                store,
                entry.res_type,
                entry.res_id or entry.new_id,
                _patch_document(entry.resource),
                clock=self.clock,
                query_string=entry.query,
                preconditions=entry.preconditions,
                guard=guard,
            )
            return _write_result(base, outcome, guard)
        result = self._get(store, entry, base, guard)
        # HEAD is GET without the body (RFC 9110 §9.3.2): the status, etag and lastModified only.
        return replace(result, resource=None, read=False) if entry.method == "HEAD" else result

    def _get(self, store: ResourceStore, entry: _Entry, base: str, guard: AccessGuard) -> EntryResult:
        args = parse_qsl(entry.query or "", keep_blank_values=True)
        if entry.history:
            query = history.prepare(
                entry.res_type or None,
                entry.res_id,
                args,
                guard=guard,
                default_count=self.default_count,
                max_count=self.max_count,
            )
            page = history.run(store, query, guard)
            return EntryResult("200 OK", resource=history.history_text(page, base, self.clock()), read=True)
        if entry.version is not None:
            found = interactions.vread(store, entry.res_type, entry.res_id or "", entry.version, guard=guard)
        elif entry.res_id:
            found = interactions.read(store, entry.res_type, entry.res_id, guard=guard)
        else:
            # On the transaction's own connection: a GET entry sees what the earlier entries wrote.
            query = searching.prepare(
                entry.res_type,
                args,
                strict=False,
                default_count=self.default_count,
                max_count=self.max_count,
                guard=guard,
                base=base,
            )
            page = searching.run(store, query, guard)
            text = searching.searchset_text(page, base, self.clock(), guard=guard)
            return EntryResult("200 OK", resource=text, read=True)
        # As on a REST read, _summary and _elements ask for part of the resource.
        subset = (
            read_subset(found.res_type, parse_qsl(entry.query, keep_blank_values=True))
            if entry.query
            else None
        )
        refuse_if_match(found, entry.preconditions.if_match)
        etag, last_modified = f'W/"{found.version_id}"', format_instant(found.last_updated_us)
        if not_modified(found, entry.preconditions.if_none_match, entry.modified_before_us):
            return EntryResult("304 Not Modified", etag=etag, last_modified=last_modified)
        content = guard.present(found.res_type, found.content) if found.content else None
        if content is not None and subset is not None:
            content = subset.apply_text(found.res_type, content)
        return EntryResult("200 OK", read=True, etag=etag, last_modified=last_modified, resource=content)

    # -- batch -------------------------------------------------------------------------------------
    def _batch(self, raw_entries: list, base: str, guard: AccessGuard) -> list[EntryResult]:
        results: list[EntryResult] = []
        written = _placeholder_full_urls(raw_entries)
        with self.uow.writing() as store:
            if store.takes_row_locks:
                _lock_in_order(store, raw_entries, base)
            for i, raw in enumerate(raw_entries):
                try:
                    entry = _parse_entry(i, raw, base)
                    _refuse_dependency(entry, written)
                    with store.savepoint():
                        if entry.method == "POST":
                            entry.new_id = None
                            outcome = interactions.create(
                                store,
                                entry.res_type,
                                entry.resource,
                                clock=self.clock,
                                if_none_exist=entry.if_none_exist,
                                guard=guard,
                            )
                            results.append(_write_result(base, outcome, guard))
                        elif entry.method == "PUT" and entry.query:
                            outcome = interactions.conditional_update(
                                store,
                                entry.res_type,
                                entry.query,
                                entry.resource,
                                clock=self.clock,
                                preconditions=entry.preconditions,
                                guard=guard,
                            )
                            results.append(_write_result(base, outcome, guard))
                        else:
                            entry.new_id = entry.res_id
                            results.append(self._run(store, entry, base, guard))
                except AdapterError as exc:
                    failed = _fail(
                        i, exc, has_resource=isinstance(raw, dict) and raw.get("resource") is not None
                    )
                    results.append(
                        EntryResult(
                            f"{exc.status} {_REASONS.get(exc.status, 'Error')}",
                            outcome=dump_json(operation_outcome(failed.issues)),
                        )
                    )
        return results


def _run_order(entry: _Entry, held_back: set[int]) -> tuple[bool, bool, int, int]:
    """The spec's order (DELETE, POST, PUT/PATCH, then GET/HEAD), except that the writes whose
    resources hold conditional references come after all the others, so that those references, resolved
    as their entry runs, see every resource the Bundle writes (http.html: they are resolved last); and
    so do the writes that refer to those (_hold_back_their_referrers)."""
    return entry.method in _READS, entry.index in held_back, _ORDER[entry.method], entry.index


def _hold_back_their_referrers(entries: list[_Entry], held_back: set[int]) -> None:
    """Add to `held_back` the writes that refer to a held-back one, until none is left.

    A write can depend on what it refers to existing already: a Task gives its owner's label to the order
    it points at (interactions._after_write), which an order written after it would not get, and the
    manufacturer would not see its own order. Held back together, the two keep their relative order."""
    if not held_back:
        return
    identity = {
        f"{e.res_type}/{e.new_id}": e.index for e in entries if e.new_id and e.method in ("POST", "PUT")
    }
    grown = True
    while grown:
        held = {ref for ref, index in identity.items() if index in held_back}
        grown = False
        for entry in entries:
            if entry.index in held_back or not isinstance(entry.resource, dict):
                continue
            if any(f"{t}/{i}" in held for t, i in references(entry.resource)):
                held_back.add(entry.index)
                grown = True


def _lock_keys(entries: list[_Entry]) -> list[str]:
    """The conditional-write lock keys the entries' searches and updates as create will take (see
    interactions.find_matches and update), to take them in advance and in one order."""
    keys = []
    for entry in entries:
        if entry.method == "POST" and entry.if_none_exist:
            keys.append(interactions.search_lock(entry.res_type, entry.if_none_exist))
        elif entry.method in ("PUT", "DELETE", "PATCH") and entry.query and not entry.res_id:
            keys.append(interactions.search_lock(entry.res_type, entry.query))
        elif entry.method == "PUT" and entry.res_id:
            keys.append(interactions.creation_lock(entry.res_type, entry.res_id))
        if isinstance(entry.resource, dict) and not entry.rewritten:
            for text in reference_texts(entry.resource):
                if interactions.is_conditional_reference(text):
                    res_type, _, query = text.partition("?")
                    keys.append(interactions.search_lock(res_type, query))
    return keys


def _targets(entries: list[_Entry]) -> list[tuple[str, str]]:
    """The (type, id) of the resources the entries update, patch or delete, as far as known."""
    return [
        (entry.res_type, ident)
        for entry in entries
        if entry.method in ("PUT", "DELETE", "PATCH") and (ident := entry.new_id or entry.res_id)
    ]


def _lock_in_order(store: ResourceStore, raw_entries: list, base: str) -> None:
    """Take the locks a batch's entries will need, in one order (ResourceStore.lock_keys, lock_current).

    Each entry locks what it writes as it runs: the resource it changes, the slot of a conditional
    search. Two Bundles writing the same two resources in opposite orders would each hold the lock the
    other waits for, and PostgreSQL would fail one of them after a second, every entry with it. Taken
    here in ascending order, the second Bundle waits for the first at its first lock, then runs. An entry
    that cannot be read is left to the loop that reports it; the conditional URLs of a batch are resolved
    as each entry runs, and their targets locked then."""
    entries = []
    for index, raw in enumerate(raw_entries):
        try:
            entries.append(_parse_entry(index, raw, base))
        except AdapterError:
            continue
    store.lock_keys(_lock_keys(entries))
    store.lock_current(_targets(entries))


def _placeholder_full_urls(raw_entries: list) -> dict[str, int]:
    """The urn: fullUrls (urn:uuid, urn:oid) of the batch entries that write a resource, with their index:
    names that stand for a resource only inside this Bundle."""
    out: dict[str, int] = {}
    for index, raw in enumerate(raw_entries):
        request = raw.get("request") if isinstance(raw, dict) else None
        full_url = raw.get("fullUrl") if isinstance(raw, dict) else None
        method = request.get("method") if isinstance(request, dict) else None
        writes = isinstance(method, str) and method.upper() in ("POST", "PUT")
        if isinstance(full_url, str) and full_url.startswith("urn:") and writes:
            out.setdefault(full_url, index)
    return out


def _refuse_dependency(entry: _Entry, written: dict[str, int]) -> None:
    """400 for a batch entry whose resource refers to another entry by its urn: fullUrl. http.html batch
    rules: there SHALL be no interdependencies between a batch's entries, and servers SHOULD check; a
    batch does not rewrite such references, so it would be stored pointing at nothing."""
    if not isinstance(entry.resource, dict):
        return
    for text in reference_texts(entry.resource):
        other = written.get(text)
        if other is not None and other != entry.index:
            raise InvalidRequestError(
                f"the resource refers to {text!r}, the fullUrl of entry {other} of this batch: the entries "
                "of a batch are independent and such a reference is not resolved; send a transaction",
                expression=interactions.reference_path(entry.resource, text, entry.res_type),
            )


_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    410: "Gone",
    412: "Precondition Failed",
    422: "Unprocessable Entity",
}


def _patch_document(resource: object) -> object:
    """A PATCH entry's patch: a Parameters resource (FHIRPath Patch), or a Binary holding a JSON Patch."""
    if isinstance(resource, dict) and resource.get("resourceType") == "Parameters":
        return resource
    if (
        isinstance(resource, dict)
        and resource.get("resourceType") == "Binary"
        and str(resource.get("contentType", "")).split(";")[0].strip() == JSON_PATCH
        and isinstance(resource.get("data"), str)
    ):
        try:
            return parse_json(base64.b64decode(resource["data"], validate=True), max_depth=64)
        except (ValueError, binascii.Error):
            raise InvalidRequestError("the Binary's data is not a base64 JSON Patch document") from None
    raise InvalidRequestError(
        f"a PATCH entry holds a Parameters resource (FHIRPath Patch) or a Binary of {JSON_PATCH}",
        expression="resource",
    )


def _write_result(base: str, outcome: WriteOutcome, guard: AccessGuard) -> EntryResult:
    stored = outcome.stored
    return EntryResult(
        "201 Created" if outcome.status == 201 else "200 OK",
        location=f"{base}/{stored.res_type}/{stored.res_id}/_history/{stored.version_id}",
        etag=f'W/"{stored.version_id}"',
        last_modified=format_instant(stored.last_updated_us),
        resource=guard.present(stored.res_type, stored.content) if stored.content else None,
        outcome=dump_json(operation_outcome(outcome.warnings)) if outcome.warnings else None,
    )


def response_bundle(
    kind: str,
    results: list[EntryResult],
    *,
    now: str,
    include_resources: bool,
    include_outcomes: bool = False,
) -> str:
    """The batch-response / transaction-response Bundle as JSON text.

    `include_resources` and `include_outcomes` follow Prefer (return=representation, OperationOutcome)
    for the write entries; a GET entry always carries what it read.
    """
    parts = []
    for result in results:
        if include_outcomes and not result.read and result.outcome is None and result.status[:1] == "2":
            issue = Issue("information", "informational", f"{result.status}: {result.location or 'done'}")
            result = replace(result, outcome=dump_json(operation_outcome([issue])))
        response = {"status": result.status}
        if result.location:
            response["location"] = result.location
        if result.etag:
            response["etag"] = result.etag
        if result.last_modified:
            response["lastModified"] = result.last_modified
        text = dump_json(response)
        if result.outcome:
            text = text[:-1] + ',"outcome":' + result.outcome + "}"
        entry = "{"
        if (include_resources or result.read) and result.resource:
            entry += '"resource":' + result.resource + ","
        entry += '"response":' + text + "}"
        parts.append(entry)
    return (
        '{"resourceType":"Bundle","id":"'
        + str(uuid.uuid4())
        + '","type":"'
        + kind
        + '","meta":{"lastUpdated":"'
        + now
        + '"},"entry":['
        + ",".join(parts)
        + "]}"
    )
