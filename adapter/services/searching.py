"""Search as a use case on an open store: paging with snapshots, totals, and the searchset Bundle."""

from __future__ import annotations

from dataclasses import dataclass, field

from adapter.errors import InvalidRequestError, Issue
from adapter.fhirio import bundles
from adapter.fhirio.jsonio import dump_json
from adapter.fhirio.outcome import operation_outcome
from adapter.fhirio.subsetting import Subset
from adapter.search import compartments
from adapter.search.dates import format_instant
from adapter.search.query import SearchQuery, parse_search
from adapter.security.tenancy import AccessGuard
from adapter.services import interactions
from adapter.services.paging import decode_cursor, encode_cursor
from adapter.store.resources import ResourceStore, StoredResource
from adapter.store.search_sql import UPDATED_SORTS, position_types, sort_position

# At most this many resources come in by _revinclude on one page.
REVINCLUDE_LIMIT = 1000
# _include:iterate follows references this many steps from the page at most (pathways are shallow:
# Task -> ServiceRequest -> Patient -> Organization).
ITERATE_ROUNDS = 4


@dataclass
class SearchPage:
    query: SearchQuery
    resources: list[StoredResource]
    total: int | None
    next_cursor: str | None
    warnings: list[Issue] = field(default_factory=list)
    included: list[StoredResource] = field(default_factory=list)


def prepare(
    res_type: str,
    args: list[tuple[str, str]],
    *,
    strict: bool,
    default_count: int,
    max_count: int,
    guard: AccessGuard,
    base: str | None = None,
    compartment: tuple[str, str] | None = None,
) -> SearchQuery:
    """Check the type and the caller's search scope, parse the query and bind it to what they may see.
    `base`: the server's base as the request reached it (absolute references on it are local).
    `compartment`: (type, id) of the compartment searched in, if any."""
    interactions.check_type(res_type)
    guard.require(res_type, "s")
    query = parse_search(
        res_type, args, strict=strict, default_count=default_count, max_count=max_count, server_base=base
    )
    if compartment is not None:
        interactions.check_id(compartment[1])
        query.conditions.append(compartments.condition(res_type, *compartment, server_base=base))
        query.compartment = compartment
    query.visible_labels = guard.visible_labels
    guard.check_search(res_type, query.conditions, [k.code for k in query.sort_keys])
    return query


def _fits(position: tuple, types: tuple[type, ...]) -> bool:
    return len(position) == len(types) and all(
        type(v) is kind for v, kind in zip(position, types, strict=True)
    )


def run(store: ResourceStore, query: SearchQuery, guard: AccessGuard | None = None) -> SearchPage:
    """One page of results; the first page of a longer result fixes the snapshot the next pages use."""
    snapshot, after = decode_cursor(query.cursor) if query.cursor else (None, None)
    if after is not None and not _fits(after, position_types(query)):
        raise InvalidRequestError("the paging link belongs to another sort order", expression="_page")
    if query.summary_count or query.count == 0:
        return SearchPage(query, [], store.count(query, snapshot=snapshot), None, query.warnings)
    rows = store.search(query, snapshot=snapshot, after=after, limit=query.count + 1)
    more = len(rows) > query.count
    rows = rows[: query.count]
    if more and snapshot is None:
        # Later pages see only what existed now, so new arrivals cannot push a resource twice.
        if query.sort in UPDATED_SORTS:
            snapshot = store.max_last_updated(query.res_type)
        else:
            snapshot = store.max_pk()
    total: int | None
    if after is None and not more:
        total = len(rows)
    elif query.total_wanted:
        total = store.count(query, snapshot=snapshot)
    else:
        total = None
    next_cursor = None
    if more and snapshot is not None:
        last = rows[-1]
        next_cursor = encode_cursor(
            snapshot, sort_position(query.sort, last.pk, last.last_updated_us, last.sort_values)
        )
    seen = {row.pk for row in rows}
    included: list[StoredResource] = []
    warnings = list(query.warnings)
    revincluded = store.revincluded(query, rows, limit=REVINCLUDE_LIMIT + 1)
    if len(revincluded) > REVINCLUDE_LIMIT:
        revincluded = revincluded[:REVINCLUDE_LIMIT]
        warnings.append(
            Issue(
                "warning",
                "too-costly",
                f"_revinclude brought more than {REVINCLUDE_LIMIT} resources on this page; only the first "
                f"{REVINCLUDE_LIMIT} are included (ask for smaller pages with _count)",
            )
        )
    found = store.included(query.res_type, query.includes, [row.pk for row in rows], query.visible_labels)
    _admit([*found, *revincluded], seen, guard, included)
    iterated, cut = _iterate(store, query, [*rows, *included], seen, guard)
    included.extend(iterated)
    if cut:
        warnings.append(Issue("warning", "too-costly", cut))
    return SearchPage(query, rows, total, next_cursor, warnings, included)


def _admit(
    found: list[StoredResource], seen: set[int], guard: AccessGuard | None, into: list[StoredResource]
) -> None:
    """Add to `into` what is new and readable by the caller."""
    for r in found:
        if r.pk not in seen and (guard is None or guard.permits(r.res_type, "r")):
            seen.add(r.pk)
            into.append(r)


def _iterate(
    store: ResourceStore,
    query: SearchQuery,
    start: list[StoredResource],
    seen: set[int],
    guard: AccessGuard | None,
) -> tuple[list[StoredResource], str | None]:
    """_include:iterate and _revinclude:iterate: follow the iterated includes from what the page holds,
    and look for what refers to it, then again from what that brought in, until nothing new comes, at
    most ITERATE_ROUNDS times. Returns what came in, and why the walk may have been cut short (the last
    allowed step still brought something, or the iterated _revinclude reached REVINCLUDE_LIMIT)."""
    out: list[StoredResource] = []
    frontier = start
    if not query.iterated_includes and not query.iterated_revincludes:
        return out, None
    for _ in range(ITERATE_ROUNDS):
        if not frontier:
            return out, None
        new: list[StoredResource] = []
        for source, code, target in query.iterated_includes:
            pks = [r.pk for r in frontier if r.res_type == source]
            _admit(store.included(source, [(code, target)], pks, query.visible_labels), seen, guard, new)
        referring = 0
        for source, code, target in query.iterated_revincludes:
            pointed = [(r.res_type, r.res_id) for r in frontier if target is None or r.res_type == target]
            budget = REVINCLUDE_LIMIT + 1 - referring
            found = store.referring([(source, code)], pointed, query.visible_labels, limit=budget)
            referring += len(found)
            _admit(found, seen, guard, new)
            if referring > REVINCLUDE_LIMIT:
                out.extend(new)
                return out, (
                    f"_revinclude:iterate found more than {REVINCLUDE_LIMIT} resources in one step; "
                    "the rest are missing (ask for smaller pages with _count)"
                )
        out.extend(new)
        frontier = new
    if frontier:
        return out, (
            f"_include:iterate and _revinclude:iterate stop after {ITERATE_ROUNDS} steps; "
            "resources further along may be missing"
        )
    return out, None


def entry_text(
    r: StoredResource, base: str, guard: AccessGuard, subset: Subset | None = None, *, match: bool = True
) -> tuple[str, str]:
    """(fullUrl, resource JSON) of a searchset entry: the stored JSON as the caller may see it, reduced
    to what _summary or _elements keep."""
    text = guard.present(r.res_type, r.content or "{}")
    if subset is not None:
        text = subset.apply_text(r.res_type, text, match=match)
    return f"{base}/{r.res_type}/{r.res_id}", text


def searchset_text(page: SearchPage, base: str, now_us: int, *, guard: AccessGuard) -> str:
    """The searchset Bundle of a page, built around the stored JSON of each resource."""
    within = page.query.compartment
    path = (
        f"{base}/{within[0]}/{within[1]}/{page.query.res_type}" if within else f"{base}/{page.query.res_type}"
    )
    qs = page.query.query_string()
    # The self link is the page itself (http.html paging): a later page's carries its position.
    here = "&".join(p for p in (qs, f"_page={page.query.cursor}" if page.query.cursor else "") if p)
    links = [("self", f"{path}?{here}" if here else path)]
    if page.next_cursor:
        links.append(("next", f"{path}?{qs + '&' if qs else ''}_page={page.next_cursor}"))
    outcome = dump_json(operation_outcome(page.warnings)) if page.warnings else None
    subset = page.query.subset

    def entry(r: StoredResource, match: bool) -> tuple[str, str]:
        return entry_text(r, base, guard, subset, match=match)

    return bundles.searchset(
        (entry(r, True) for r in page.resources),
        total=page.total,
        links=links,
        now=format_instant(now_us),
        outcome=outcome,
        included=(entry(r, False) for r in page.included),
    )
