"""The history interactions (instance, type and system) on a ResourceStore, for a REST call and for a
Bundle GET entry alike: parameters, the page of versions, the history Bundle."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from adapter.errors import InvalidRequestError, NotFoundError
from adapter.fhirio import bundles
from adapter.search.dates import date_range, format_instant
from adapter.security.tenancy import AccessGuard
from adapter.services import interactions
from adapter.services.paging import decode_position, encode_cursor
from adapter.store.resources import ResourceStore, StoredResource

# http.html history: "each of these parameters SHALL NOT appear more than once".
_HISTORY_PARAMETERS = ("_count", "_since", "_at", "_list")


@dataclass(frozen=True)
class HistoryQuery:
    """A checked history request: whose history, and which versions."""

    res_type: str | None
    res_id: str | None
    since_us: int | None
    at: tuple[tuple[int, int], ...]
    count: int
    before: int | None  # the paging position, from _page
    kept: tuple[tuple[str, str], ...]  # the parameters the paging links repeat
    page: str | None = None  # the _page token this page was asked for with


@dataclass(frozen=True)
class HistoryPage:
    query: HistoryQuery
    rows: list[StoredResource]
    more: bool
    total: int | None


def prepare(
    res_type: str | None,
    res_id: str | None,
    args: list[tuple[str, str]],
    *,
    guard: AccessGuard,
    default_count: int,
    max_count: int,
) -> HistoryQuery:
    """Check the type, the caller's scopes and the parameters. Raises InvalidRequestError (400) for a
    malformed, repeated or unsupported parameter."""
    if res_type:
        interactions.check_type(res_type)
        guard.require(res_type, "r" if res_id else "s")
    else:
        guard.require("*", "s")
    _check_parameters(args)
    since_us, count, before, page = None, default_count, None, None
    at: list[tuple[int, int]] = []
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
            count = min(int(value), max_count)
        elif name == "_page":
            before, page = decode_position(value), value
    kept = tuple((n, v) for n, v in args if n in ("_since", "_at", "_count"))
    return HistoryQuery(res_type, res_id, since_us, tuple(at), count, before, kept, page)


def _check_parameters(args: list[tuple[str, str]]) -> None:
    """400 for a history parameter given twice, and for _list, which this server does not support: ignored,
    it would answer with the history of every resource instead of those in the list."""
    names = [name for name, _ in args]
    for name in _HISTORY_PARAMETERS:
        if names.count(name) > 1:
            raise InvalidRequestError(f"{name} may appear only once in a history request", expression=name)
    if "_list" in names:
        raise InvalidRequestError("_list is not supported on history", expression="_list")


def run(store: ResourceStore, query: HistoryQuery, guard: AccessGuard) -> HistoryPage:
    """One page of versions, newest first, as the caller may see them. Raises NotFoundError for an
    instance the caller does not know."""
    visible = guard.visible_labels
    if query.res_type and query.res_id:
        current = store.current(query.res_type, query.res_id)
        if current is None or not guard.can_see(store.labels(current.pk)):
            raise NotFoundError(f"{query.res_type}/{query.res_id} is not known", expression=query.res_type)
    rows = store.history(
        query.res_type,
        query.res_id,
        since_us=query.since_us,
        before_seq=query.before,
        limit=query.count + 1,
        visible=visible,
        at=query.at,
    )
    total = (
        store.count_history(query.res_type, query.res_id, query.since_us, None, visible=visible, at=query.at)
        if query.before is None
        else None
    )
    page = [interactions.presented(row, guard) for row in rows[: query.count]]
    return HistoryPage(query, page, len(rows) > query.count, total)


def history_text(page: HistoryPage, base: str, now_us: int) -> str:
    """The history Bundle of a page, with its self and next links."""
    query = page.query
    path = "/".join(p for p in (base, query.res_type, query.res_id) if p) + "/_history"
    # Encoded as a search's links are: a bare '+' of a time zone offset would come back as a space.
    qs = urlencode(query.kept)
    # The self link is the page itself (http.html paging: page 3's self link carries its page state).
    here = "&".join(p for p in (qs, urlencode([("_page", query.page)]) if query.page else "") if p)
    links = [("self", f"{path}?{here}" if here else path)]
    if page.more and page.rows:
        cursor = encode_cursor(0, page.rows[-1].seq)
        links.append(("next", f"{path}?{qs + '&' if qs else ''}{urlencode([('_page', cursor)])}"))
    return bundles.history(
        (_history_entry(base, r) for r in page.rows),
        total=page.total,
        links=links,
        now=format_instant(now_us),
    )


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
