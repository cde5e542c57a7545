"""FhirService: the REST interactions as use cases, each in one unit of work."""

from __future__ import annotations

import uuid
from dataclasses import replace

from adapter.errors import InvalidRequestError, NotFoundError
from adapter.fhirio import bundles
from adapter.search.dates import date_range, format_instant
from adapter.security.tenancy import AccessGuard
from adapter.services import interactions, searching
from adapter.services.interactions import SERVER, Clock, WriteOutcome, system_clock_us
from adapter.services.paging import decode_position, encode_cursor
from adapter.services.searching import SearchPage
from adapter.store.resources import StoredResource
from adapter.store.unit_of_work import UnitOfWork


class FhirService:
    """Create, read, update, delete, search and history, each as one database transaction."""

    def __init__(
        self,
        uow: UnitOfWork,
        *,
        clock: Clock = system_clock_us,
        default_count: int = 50,
        max_count: int = 1000,
    ):
        self.uow = uow
        self.clock = clock
        self.default_count = default_count
        self.max_count = max_count

    def create(
        self, res_type: str, resource: dict, *, if_none_exist: str | None = None, guard: AccessGuard = SERVER
    ) -> WriteOutcome:
        validated = self._pre_validate(resource, res_type, "c", guard)
        prepared = _prepare(resource, res_type, str(uuid.uuid4()), validated)
        with self.uow.writing() as store:
            outcome = interactions.create(
                store,
                res_type,
                resource,
                clock=self.clock,
                if_none_exist=if_none_exist,
                guard=guard,
                validated=validated,
                prepared=prepared,
            )
        return _present_write(outcome, guard)

    @staticmethod
    def _pre_validate(resource: object, res_type: str, permission: str, guard: AccessGuard) -> tuple | None:
        # Validation needs no database: doing it before the write transaction keeps SQLite's single
        # write lock for the SQL alone, so workers validate in parallel. Scopes are checked first.
        if not interactions.is_type(res_type):
            return None
        guard.require(res_type, permission)
        return interactions.pre_validate(resource, res_type)

    def read(self, res_type: str, res_id: str, *, guard: AccessGuard = SERVER) -> StoredResource:
        with self.uow.reading() as store:
            return _present(interactions.read(store, res_type, res_id, guard=guard), guard)

    def vread(
        self, res_type: str, res_id: str, version: str, *, guard: AccessGuard = SERVER
    ) -> StoredResource:
        with self.uow.reading() as store:
            return _present(interactions.vread(store, res_type, res_id, version, guard=guard), guard)

    def update(
        self,
        res_type: str,
        res_id: str,
        resource: dict,
        *,
        if_match: str | None = None,
        guard: AccessGuard = SERVER,
        if_none_match: str | None = None,
    ) -> WriteOutcome:
        validated = self._pre_validate(resource, res_type, "u", guard)
        prepared = _prepare(resource, res_type, res_id, validated)
        with self.uow.writing() as store:
            outcome = interactions.update(
                store,
                res_type,
                res_id,
                resource,
                clock=self.clock,
                if_match=if_match,
                guard=guard,
                validated=validated,
                prepared=prepared,
                if_none_match=if_none_match,
            )
        return _present_write(outcome, guard)

    def patch(
        self,
        res_type: str,
        res_id: str,
        document: object,
        *,
        if_match: str | None = None,
        guard: AccessGuard = SERVER,
        if_none_match: str | None = None,
    ) -> WriteOutcome:
        """Apply a JSON Patch or a FHIRPath Patch to the current version and store the result as the next
        version.

        The patched resource goes through the same validation, access checks and version check as an
        update; without If-Match the version patched is the one that must still be current.
        """
        with self.uow.writing() as store:
            outcome = interactions.patch(
                store,
                res_type,
                res_id,
                document,
                clock=self.clock,
                if_match=if_match,
                guard=guard,
                if_none_match=if_none_match,
            )
        return _present_write(outcome, guard)

    def conditional_patch(
        self,
        res_type: str,
        query_string: str,
        document: object,
        *,
        if_match: str | None = None,
        guard: AccessGuard = SERVER,
        if_none_match: str | None = None,
    ) -> WriteOutcome:
        """Patch the single match of a search: none is 404, several 412."""
        with self.uow.writing() as store:
            outcome = interactions.patch(
                store,
                res_type,
                None,
                document,
                clock=self.clock,
                query_string=query_string,
                if_match=if_match,
                guard=guard,
                if_none_match=if_none_match,
            )
        return _present_write(outcome, guard)

    def conditional_update(
        self,
        res_type: str,
        query_string: str,
        resource: dict,
        *,
        if_match: str | None = None,
        guard: AccessGuard = SERVER,
        if_none_match: str | None = None,
    ) -> WriteOutcome:
        validated = self._pre_validate(resource, res_type, "u", guard)
        with self.uow.writing() as store:
            outcome = interactions.conditional_update(
                store,
                res_type,
                query_string,
                resource,
                clock=self.clock,
                if_match=if_match,
                guard=guard,
                validated=validated,
                if_none_match=if_none_match,
            )
        return _present_write(outcome, guard)

    def delete(
        self,
        res_type: str,
        res_id: str,
        *,
        if_match: str | None = None,
        guard: AccessGuard = SERVER,
        if_none_match: str | None = None,
    ) -> StoredResource | None:
        with self.uow.writing() as store:
            return interactions.delete(
                store,
                res_type,
                res_id,
                clock=self.clock,
                if_match=if_match,
                guard=guard,
                if_none_match=if_none_match,
            )

    def conditional_delete(
        self,
        res_type: str,
        query_string: str,
        *,
        if_match: str | None = None,
        guard: AccessGuard = SERVER,
        if_none_match: str | None = None,
    ) -> StoredResource | None:
        with self.uow.writing() as store:
            return interactions.conditional_delete(
                store,
                res_type,
                query_string,
                clock=self.clock,
                if_match=if_match,
                guard=guard,
                if_none_match=if_none_match,
            )

    # -- search ------------------------------------------------------------------------------------
    def search(
        self,
        res_type: str,
        args: list[tuple[str, str]],
        *,
        strict: bool = False,
        guard: AccessGuard = SERVER,
    ) -> SearchPage:
        query = searching.prepare(
            res_type,
            args,
            strict=strict,
            default_count=self.default_count,
            max_count=self.max_count,
            guard=guard,
        )
        with self.uow.reading() as store:
            return searching.run(store, query, guard)

    def search_bundle(self, page: SearchPage, base: str, *, guard: AccessGuard = SERVER) -> str:
        return searching.searchset_text(page, base, self.clock(), guard=guard)

    # -- history -----------------------------------------------------------------------------------
    def history_bundle(
        self,
        base: str,
        res_type: str | None,
        res_id: str | None,
        args: list[tuple[str, str]],
        *,
        guard: AccessGuard = SERVER,
    ) -> str:
        if res_type:
            interactions.check_type(res_type)
            guard.require(res_type, "r" if res_id else "s")
        else:
            guard.require("*", "s")
        since_us, count, before = None, self.default_count, None
        at: list[tuple[int, int]] = []
        _check_history_parameters(args)
        for name, value in args:
            if name == "_since":
                found = date_range(value)
                if found is None:
                    raise InvalidRequestError(f"_since {value!r} is not an instant", expression="_since")
                since_us = found[0]
            elif name == "_at":
                for part in value.split(","):
                    period = date_range(part)
                    if period is None:
                        raise InvalidRequestError(f"_at {part!r} is not a FHIR date", expression="_at")
                    at.append(period)
            elif name == "_count":
                if not (value.isascii() and value.isdigit()):  # isdigit() alone accepts "²"
                    raise InvalidRequestError("_count must be a non-negative integer", expression="_count")
                count = min(int(value), self.max_count)
            elif name == "_page":
                before = decode_position(value)
        with self.uow.reading() as store:
            visible = guard.visible_labels
            if res_type and res_id:
                current = store.current(res_type, res_id)
                if current is None or not guard.can_see(store.labels(current.pk)):
                    raise NotFoundError(f"{res_type}/{res_id} is not known", expression=res_type)
            rows = store.history(
                res_type,
                res_id,
                since_us=since_us,
                before_seq=before,
                limit=count + 1,
                visible=visible,
                at=tuple(at),
            )
            more = len(rows) > count
            rows = [_present(r, guard) for r in rows[:count]]
            total = (
                store.count_history(res_type, res_id, since_us, None, visible=visible, at=tuple(at))
                if before is None
                else None
            )
        path = "/".join(p for p in (base, res_type, res_id) if p) + "/_history"
        kept = [(n, v) for n, v in args if n in ("_since", "_at", "_count")]
        qs = "&".join(f"{n}={v}" for n, v in kept)
        links = [("self", f"{path}?{qs}" if qs else path)]
        if more and rows:
            cursor = encode_cursor(0, rows[-1].seq)
            links.append(("next", f"{path}?{qs + '&' if qs else ''}_page={cursor}"))
        return bundles.history(
            (_history_entry(base, r) for r in rows),
            total=total,
            links=links,
            now=format_instant(self.clock()),
        )


# http.html history: "each of these parameters SHALL NOT appear more than once".
_HISTORY_PARAMETERS = ("_count", "_since", "_at", "_list")


def _check_history_parameters(args: list[tuple[str, str]]) -> None:
    """400 for a history parameter given twice, and for _list, which this server does not support: ignored,
    it would answer with the history of every resource instead of those in the list."""
    names = [name for name, _ in args]
    for name in _HISTORY_PARAMETERS:
        if names.count(name) > 1:
            raise InvalidRequestError(f"{name} may appear only once in a history request", expression=name)
    if "_list" in names:
        raise InvalidRequestError("_list is not supported on history", expression="_list")


def _history_entry(base: str, row: StoredResource) -> bundles.HistoryEntry:
    method = row.method if row.method in ("POST", "PUT", "DELETE") else "PUT"
    url = row.res_type if method == "POST" else f"{row.res_type}/{row.res_id}"
    status = {"POST": "201 Created", "DELETE": "204 No Content"}.get(method, "200 OK")
    if method == "PUT" and row.version_id == 1:
        status = "201 Created"  # an update as create
    return bundles.HistoryEntry(
        full_url=f"{base}/{row.res_type}/{row.res_id}",
        content=None if row.deleted else row.content,
        method=method,
        url=url,
        status=status,
        etag=f'W/"{row.version_id}"',
        last_modified=format_instant(row.last_updated_us),
    )


def _prepare(
    resource: object, res_type: str, res_id: str, validated: tuple | None
) -> interactions.PreparedBody | None:
    # Only a body that passed validation is worth the work; the interaction reports the others.
    if validated is None or not isinstance(resource, dict):
        return None
    return interactions.prepare(res_type, res_id, resource)


def _present(stored: StoredResource, guard: AccessGuard) -> StoredResource:
    if not guard.pseudonymises or stored.content is None:
        return stored
    return replace(stored, content=guard.present(stored.res_type, stored.content))


def _present_write(outcome: WriteOutcome, guard: AccessGuard) -> WriteOutcome:
    if not guard.pseudonymises:
        return outcome
    return replace(outcome, stored=_present(outcome.stored, guard))
