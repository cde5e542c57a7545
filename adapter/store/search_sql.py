"""Search SQL built once per query shape and reused with bound values.

Building SQLAlchemy expressions costs more than running the query for a typical poll, so the store
splits a search into its shape (which parameters, prefixes, modifiers, sort, paging state) and its
values. Statements are cached by shape; each request only binds values.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, not_, or_, select, tuple_
from sqlalchemy.sql.elements import ColumnElement

from adapter.search.query import SearchQuery
from adapter.store.schema import resource_access, resources, search_index

_CACHE_LIMIT = 512
_cache: dict[Hashable, Select] = {}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def plan(query: SearchQuery) -> tuple[tuple, dict[str, Any]]:
    """The shape of a query's filters and the values to bind into them."""
    params: dict[str, Any] = {"rt": query.res_type}
    labels = query.visible_labels
    key: list[Hashable] = ["none" if labels is None else "empty" if not labels else "labels"]
    if labels:
        params["vis"] = sorted(labels)
    for i, condition in enumerate(query.conditions):
        name = f"c{i}"
        if condition.type == "_id":
            key.append(("_id",))
            params[name] = list(condition.values)
            continue
        if condition.type == "_lastUpdated":
            key.append(("_lastUpdated", tuple(v.prefix for v in condition.values)))
            for j, value in enumerate(condition.values):
                params[f"{name}_{j}lo"], params[f"{name}_{j}hi"] = value.lo, value.hi
            continue
        params[f"{name}p"] = condition.code
        if condition.type == "missing":
            key.append(("missing", condition.values[0]))
            continue
        parts: list[Hashable] = []
        for j, value in enumerate(condition.values):
            v = f"{name}_{j}"
            if condition.type == "token":
                system, code = value
                parts.append((system is None, system == "", code is None))
                params[f"{v}s"], params[f"{v}c"] = system, code
            elif condition.type == "reference":
                target, ident = value
                parts.append(target is None)
                params[f"{v}t"], params[f"{v}c"] = target, ident
            elif condition.type == "string":
                pattern = _escape_like(str(value)) + "%"
                params[f"{v}c"] = "%" + pattern if condition.modifier == "contains" else pattern
                parts.append("like")
            elif condition.type == "uri":
                below = condition.modifier == "below"
                params[f"{v}c"] = _escape_like(str(value)) + "%" if below else value
                parts.append("like" if below else "eq")
            elif condition.type == "date":
                parts.append(value.prefix)
                params[f"{v}lo"], params[f"{v}hi"] = value.lo, value.hi
            else:
                raise ValueError(f"unsupported condition type {condition.type}")
        key.append((condition.type, condition.modifier, tuple(parts)))
    return tuple(key), params


def _visible(pk_column, shape: str) -> ColumnElement[bool] | None:  # type: ignore[no-untyped-def]
    if shape == "none":
        return None
    if shape == "empty":
        return pk_column.is_(None)  # nothing is visible
    ra = resource_access.c
    return pk_column.in_(select(ra.resource_pk).where(ra.label.in_(bindparam("vis", expanding=True))))


def date_match(lo, hi, prefix: str, p_lo, p_hi) -> ColumnElement[bool]:  # type: ignore[no-untyped-def]
    """FHIR prefix semantics on half-open ranges: the stored range [lo, hi) against the searched one."""
    contained = and_(lo >= p_lo, hi <= p_hi)
    match prefix:
        case "eq":
            return contained
        case "ne":
            return not_(contained)
        case "gt":
            return hi > p_hi
        case "lt":
            return lo < p_lo
        case "ge":
            return or_(hi > p_hi, contained)
        case "le":
            return or_(lo < p_lo, contained)
        case "sa":
            return lo >= p_hi
        case "eb":
            return hi <= p_lo
        case _:  # ap: overlaps the searched range
            return and_(lo < p_hi, hi > p_lo)


def instant_match(column, prefix: str, p_lo, p_hi) -> ColumnElement[bool]:  # type: ignore[no-untyped-def]
    """date_match for a stored instant, the range [t, t + 1 us), written as plain comparisons of the
    column so that the database can range-scan its index (`t + 1 > x` would make it read every row)."""
    within = and_(column >= p_lo, column < p_hi)
    match prefix:
        case "eq" | "ap":
            return within
        case "ne":
            return not_(within)
        case "gt" | "sa":
            return column >= p_hi
        case "lt" | "eb":
            return column < p_lo
        case "ge":
            return column >= p_lo
        case "le":
            return column < p_hi
    raise ValueError(f"unknown prefix {prefix}")


def _filters(key: tuple) -> list[ColumnElement[bool]]:
    r, si = resources.c, search_index.c
    filters: list[ColumnElement[bool]] = [r.res_type == bindparam("rt"), r.deleted.is_(False)]
    visible = _visible(r.pk, key[0])
    if visible is not None:
        filters.append(visible)
    for i, item in enumerate(key[1:]):
        name = f"c{i}"
        kind = item[0]
        if kind == "_id":
            filters.append(r.res_id.in_(bindparam(name, expanding=True)))
            continue
        if kind == "_lastUpdated":
            filters.append(
                or_(
                    *(
                        instant_match(
                            r.last_updated_us, prefix, bindparam(f"{name}_{j}lo"), bindparam(f"{name}_{j}hi")
                        )
                        for j, prefix in enumerate(item[1])
                    )
                )
            )
            continue
        # Uncorrelated IN (SELECT resource_pk ...) rather than a correlated EXISTS: both SQLite and
        # PostgreSQL then read the matching index rows once, instead of probing them for every resource.
        base = [si.res_type == bindparam("rt"), si.param == bindparam(f"{name}p")]
        if kind == "missing":
            present = r.pk.in_(select(si.resource_pk).where(*base))
            filters.append(not_(present) if item[1] else present)
            continue
        _, modifier, parts = item
        matches = []
        for j, part in enumerate(parts):
            v = f"{name}_{j}"
            if kind == "token":
                any_system, no_system, no_code = part
                pieces = [] if no_code else [si.value == bindparam(f"{v}c")]
                if no_system:
                    pieces.append(si.system.is_(None))
                elif not any_system:
                    pieces.append(si.system == bindparam(f"{v}s"))
                matches.append(and_(*pieces))
            elif kind == "reference":
                match = si.value == bindparam(f"{v}c")
                matches.append(match if part else and_(match, si.system == bindparam(f"{v}t")))
            elif kind in ("string", "uri"):
                if part == "like":
                    matches.append(si.value.like(bindparam(f"{v}c"), escape="\\"))
                else:
                    matches.append(si.value == bindparam(f"{v}c"))
            elif kind == "date":
                matches.append(date_match(si.lo_us, si.hi_us, part, bindparam(f"{v}lo"), bindparam(f"{v}hi")))
        found = r.pk.in_(select(si.resource_pk).where(*base, or_(*matches)))
        filters.append(not_(found) if modifier == "not" else found)
    return filters


def _sort_columns(sort: str | None) -> tuple:
    # Creation order (pk) does not move when a resource is updated, so paging by it never skips or
    # repeats. _lastUpdated order is the time of the last write, ties broken by pk: the index
    # (res_type, last_updated_us, pk) serves both a _lastUpdated range and this order.
    r = resources.c
    return (r.pk,) if sort is None else (r.last_updated_us, r.pk)


def _snapshot_column(sort: str | None):  # type: ignore[no-untyped-def]
    return resources.c.pk if sort is None else resources.c.last_updated_us


def search_statement(
    query: SearchQuery, columns: tuple, *, snapshot: int | None, after: tuple[int, ...] | None, limit: int
) -> tuple[Select, dict[str, Any]]:
    """The page query: filters, the snapshot bound, the keyset position `after` (the sort columns'
    values of the last row of the previous page), the order, and one row more than the page."""
    shape, params = plan(query)
    key = ("search", shape, query.sort, snapshot is not None, after is not None)
    stmt = _cache.get(key)
    if stmt is None:
        order = _sort_columns(query.sort)
        descending = query.sort == "-_lastUpdated"
        stmt = select(*columns).where(*_filters(shape))
        if snapshot is not None:
            stmt = stmt.where(_snapshot_column(query.sort) <= bindparam("snapshot"))
        if after is not None:
            position = tuple_(*(bindparam(f"after{i}") for i in range(len(order))))
            stmt = stmt.where(tuple_(*order) < position if descending else tuple_(*order) > position)
        stmt = stmt.order_by(*(c.desc() if descending else c.asc() for c in order)).limit(bindparam("limit"))
        _remember(key, stmt)
    params["limit"] = limit
    if snapshot is not None:
        params["snapshot"] = snapshot
    if after is not None:
        params.update((f"after{i}", value) for i, value in enumerate(after))
    return stmt, params


def sort_position(sort: str | None, row_pk: int, row_last_updated_us: int) -> tuple[int, ...]:
    """The keyset position of a result row under `sort`, for the next page's `after`."""
    return (row_pk,) if sort is None else (row_last_updated_us, row_pk)


def count_statement(query: SearchQuery, *, snapshot: int | None) -> tuple[Select, dict[str, Any]]:
    shape, params = plan(query)
    key = ("count", shape, query.sort, snapshot is not None)
    stmt = _cache.get(key)
    if stmt is None:
        stmt = select(func.count()).select_from(resources).where(*_filters(shape))
        if snapshot is not None:
            stmt = stmt.where(_snapshot_column(query.sort) <= bindparam("snapshot"))
        _remember(key, stmt)
    if snapshot is not None:
        params["snapshot"] = snapshot
    return stmt, params


def _remember(key: Hashable, stmt: Select) -> None:
    if len(_cache) >= _CACHE_LIMIT:
        _cache.clear()
    _cache[key] = stmt
