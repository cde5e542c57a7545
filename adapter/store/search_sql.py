"""Search SQL built once per query shape and reused with bound values.

Building SQLAlchemy expressions costs more than running the query for a typical poll, so the store
splits a search into its shape (which parameters, prefixes, modifiers, sort, paging state) and its
values. Statements are cached by shape; each request only binds values.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from sqlalchemy import (
    Float,
    Select,
    String,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    tuple_,
)
from sqlalchemy.sql.elements import ColumnElement

from adapter.search.extract import VALUE_CHARS, cut_system
from adapter.search.query import Condition, SearchQuery, SortKey
from adapter.store.direct import CachedSelect
from adapter.store.schema import resource_access, resources, search_index

_CACHE_LIMIT = 512
_cache: dict[Hashable, CachedSelect] = {}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def plan(query: SearchQuery) -> tuple[tuple, dict[str, Any]]:
    """The shape of a query's filters and the values to bind into them."""
    params: dict[str, Any] = {"rt": query.res_type}
    labels = query.visible_labels
    # One bound value per label rather than an expanding list, so that the statement compiles once.
    key: list[Hashable] = ["none" if labels is None else "empty" if not labels else ("labels", len(labels))]
    for n, label in enumerate(sorted(labels or ())):
        params[f"vis{n}"] = label
    for i, condition in enumerate(query.conditions):
        key.append(_plan_condition(condition, f"c{i}", params))
    return tuple(key), params


def _plan_condition(condition: Condition, name: str, params: dict[str, Any]) -> Hashable:
    """The shape of one condition; its values go into `params` under names starting with `name`."""
    if condition.type == "_id":
        params[name] = list(condition.values)
        return ("_id", condition.modifier)
    if condition.type == "_lastUpdated":
        for j, value in enumerate(condition.values):
            params[f"{name}_{j}lo"], params[f"{name}_{j}hi"] = value.lo, value.hi
        return ("_lastUpdated", tuple(v.prefix for v in condition.values))
    params[f"{name}p"] = condition.code
    if condition.type == "compartment":
        # A reference from any of the compartment's parameters for this type (one index row suffices).
        codes, keys = condition.values
        for k, code in enumerate(codes):
            params[f"{name}_p{k}"] = code
        for j, (target, ident) in enumerate(keys):
            params[f"{name}_{j}t"], params[f"{name}_{j}c"] = cut_system(target), _cut(ident)
        return ("compartment", len(codes), (False,) * len(keys))
    if condition.type == "missing":
        return ("missing", *condition.values)
    if condition.type == "has":
        # Resources of another type that refer to this one through a reference parameter, and match.
        source, reference, inner = condition.values
        params[f"{name}_s"], params[f"{name}_r"] = source, reference
        return ("has", source, (_plan_condition(inner, f"{name}_i", params),))
    if condition.type == "chain":
        # The reference's target types, then the condition on the target (itself a chain for the
        # next link).
        targets, inner = condition.values
        for k, target in enumerate(targets):
            params[f"{name}_t{k}"] = target
        return ("chain", len(targets), (_plan_condition(inner, f"{name}_i", params),))
    if condition.type == "composite":
        # One index row per component, tied by their group number: component k of the parameter
        # is indexed under "<code>$k".
        params[f"{name}p"] = f"{condition.code}$0"
        kinds = [kind for kind, _ in condition.param.components]  # type: ignore[union-attr]
        for k in range(1, len(kinds)):
            params[f"{name}p{k}"] = f"{condition.code}${k}"
        composite = tuple(
            tuple(
                _plan_value(kind, "", part, f"{name}_{j}_{k}", params)
                for k, (kind, part) in enumerate(zip(kinds, value, strict=True))
            )
            for j, value in enumerate(condition.values)
        )
        return ("composite", tuple(kinds), composite)
    parts = [
        _plan_value(condition.type, condition.modifier, value, f"{name}_{j}", params)
        for j, value in enumerate(condition.values)
    ]
    return (condition.type, condition.modifier, tuple(parts))


def _plan_value(kind: str, modifier: str, value: Any, v: str, params: dict[str, Any]) -> Hashable:
    """The shape of one searched value of a parameter of type `kind`; its values go into `params`."""
    if kind == "token":
        system, code = value
        # Cut as the index cuts them (search.extract), so that a long value still finds itself.
        params[f"{v}s"], params[f"{v}c"] = cut_system(system), _cut(code)
        return (system is None, system == "", code is None)
    if kind == "reference":
        target, ident = value
        params[f"{v}t"], params[f"{v}c"] = cut_system(target), _cut(ident)
        return target is None
    if kind == "string":
        if modifier == "exact":
            folded, written = value
            params[f"{v}c"], params[f"{v}s"] = _cut(folded), cut_system(written)
            return "exact"
        pattern = _escape_like(str(value)[:VALUE_CHARS]) + "%"
        params[f"{v}c"] = "%" + pattern if modifier == "contains" else pattern
        return "like"
    if kind == "uri":
        if modifier == "below":
            # The URL itself, or a URL whose path goes on below it (query._uri_hierarchy).
            (url,) = value
            below = url[:VALUE_CHARS] + "/"
            params[f"{v}c"], params[f"{v}l"] = _cut(url), _escape_like(below) + "%"
            params[f"{v}p"], params[f"{v}n"] = below, len(below)
            return "below"
        if modifier == "above":
            for k, parent in enumerate(value):
                params[f"{v}c{k}"] = _cut(parent)
            return ("above", len(value))
        params[f"{v}c"] = _cut(value)
        return "eq"
    if kind == "date":
        params[f"{v}lo"], params[f"{v}hi"] = value.lo, value.hi
        return value.prefix
    if kind in ("number", "quantity"):
        params[f"{v}lo"], params[f"{v}hi"] = value.lo, value.hi
        params[f"{v}s"], params[f"{v}c"] = cut_system(value.system), _cut(value.unit)
        return (value.prefix, value.system is not None, value.unit is not None)
    raise ValueError(f"unsupported condition type {kind}")


def _cut(value: str | None) -> str | None:
    return value[:VALUE_CHARS] if value is not None else None


def number_match(num, prefix: str, p_lo, p_hi) -> ColumnElement[bool]:  # type: ignore[no-untyped-def]
    """A stored number against a searched one (bounds from query._parse_number)."""
    match prefix:
        case "eq":
            return and_(num >= p_lo, num < p_hi)
        case "ne":
            return not_(and_(num >= p_lo, num < p_hi))
        case "ap":
            return and_(num >= p_lo, num <= p_hi)
        case "gt":
            return num > p_lo
        case "sa":
            return num >= p_hi
        case "lt" | "eb":
            return num < p_lo
        case "ge":
            return num >= p_lo
        case "le":
            return num <= p_lo
    raise ValueError(f"unknown prefix {prefix}")


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


# Which set of rows a search reads first. SQLite has no statistics on value frequencies, so left alone
# it walks the _lastUpdated index through every resource of the type, testing each against the
# filters; that is right when most resources match and ruinous when a handful do (the open orders of
# one manufacturer among 100,000 Tasks). Before the search, one statement counts, up to PROBE_LIMIT,
# the rows each selective filter matches; the smallest set drives and the other filters become
# per-row probes. With no small set, the ordered walk stays.
PROBE_LIMIT = 100
ORDERED = "ordered"  # walk the sort order, probing every filter
BY_UPDATED = "updated"  # read the _lastUpdated range, probing the other filters


def _index_match(item: tuple, name: str, labels: Hashable = "none", table=None) -> ColumnElement[bool]:  # type: ignore[no-untyped-def]
    """The search_index rows of one condition (without the resource type and parameter name).

    `labels` is the visibility part of the shape: a chained condition only looks at target resources
    the caller may see, or a match would tell something about one it may not.
    """
    si = (search_index if table is None else table).c
    kind, _, parts = item
    if kind == "chain":
        types = [f"{name}_t{k}" for k in range(item[1])]
        target = resources.alias(f"{name}_r")
        satisfying = _satisfying(target, types, parts[0], name, labels)
        if len(types) == 1:
            targets = select(target.c.res_id).where(*satisfying)
            return and_(si.system == bindparam(types[0]), si.value.in_(targets))
        # Several possible target types: the (type, id) pair must be one of a matching resource.
        return tuple_(si.system, si.value).in_(select(target.c.res_type, target.c.res_id).where(*satisfying))
    if kind == "composite":
        kinds, values = item[1], item[2]
        alternatives = []
        for j, value_parts in enumerate(values):
            v = f"{name}_{j}"
            terms = [_value_match(kinds[0], value_parts[0], f"{v}_0", si)]
            for k in range(1, len(kinds)):
                other = search_index.alias(f"{v}_{k}_si")
                terms.append(
                    exists().where(
                        other.c.resource_pk == si.resource_pk,
                        other.c.param == bindparam(f"{name}p{k}"),
                        other.c.grp == si.grp,
                        _value_match(kinds[k], value_parts[k], f"{v}_{k}", other.c),
                    )
                )
            alternatives.append(and_(*terms))
        return or_(*alternatives)
    return or_(*(_value_match(kind, part, f"{name}_{j}", si) for j, part in enumerate(parts)))


def _value_match(kind: str, part: Hashable, v: str, si) -> ColumnElement[bool]:  # type: ignore[no-untyped-def]
    """The index rows (columns `si`) that match one searched value of shape `part`."""
    if kind == "token":
        any_system, no_system, no_code = part  # type: ignore[misc]
        pieces = [] if no_code else [si.value == bindparam(f"{v}c")]
        if no_system:
            pieces.append(si.system.is_(None))
        elif not any_system:
            pieces.append(si.system == bindparam(f"{v}s"))
        return and_(*pieces)
    if kind in ("reference", "compartment"):
        match = si.value == bindparam(f"{v}c")
        return match if part else and_(match, si.system == bindparam(f"{v}t"))
    if kind == "uri" and part == "below":
        # LIKE names the value, so that the (partial) value index is read; on SQLite it ignores the case of
        # ASCII letters, and a URI is matched with its case (as on PostgreSQL): the prefix is compared too.
        under = and_(
            si.value.like(bindparam(f"{v}l"), escape="\\"),
            func.substr(si.value, 1, bindparam(f"{v}n")) == bindparam(f"{v}p"),
        )
        return or_(si.value == bindparam(f"{v}c"), under)
    if kind == "uri" and part != "eq":
        return si.value.in_([bindparam(f"{v}c{k}") for k in range(part[1])])  # type: ignore[index]
    if kind in ("string", "uri"):
        if part == "exact":
            return and_(si.value == bindparam(f"{v}c"), si.system == bindparam(f"{v}s"))
        if part == "like":
            return si.value.like(bindparam(f"{v}c"), escape="\\")
        return si.value == bindparam(f"{v}c")
    if kind == "date":
        # `lo_us IS NOT NULL` lets the database use the partial date index (date rows only).
        range_match = date_match(si.lo_us, si.hi_us, part, bindparam(f"{v}lo"), bindparam(f"{v}hi"))
        return and_(si.lo_us.isnot(None), range_match)
    if kind in ("number", "quantity"):
        prefix, has_system, has_unit = part  # type: ignore[misc]
        pieces = [si.num.isnot(None), number_match(si.num, prefix, bindparam(f"{v}lo"), bindparam(f"{v}hi"))]
        if has_system:
            pieces.append(si.system == bindparam(f"{v}s"))
        if has_unit:
            pieces.append(si.value == bindparam(f"{v}c"))
        return and_(*pieces)
    raise ValueError(f"unsupported condition type {kind}")


def _referring_ids(item: tuple, name: str, labels: Hashable, referred_type: str = "rt") -> Select:
    """For `_has`: the ids of resources of the type bound to `referred_type` (the searched type, or the
    source of an enclosing `_has`) that the matching, visible resources of the source type refer to."""
    _, _, (inner,) = item
    source = resources.alias(f"{name}_src")
    refs = search_index.alias(f"{name}_ref")
    matching = select(source.c.pk).where(*_satisfying(source, [f"{name}_s"], inner, name, labels))
    return select(refs.c.value).where(
        refs.c.res_type == bindparam(f"{name}_s"),
        refs.c.param == bindparam(f"{name}_r"),
        refs.c.system == bindparam(referred_type),
        refs.c.resource_pk.in_(matching),
    )


def _satisfying(
    table, type_params: list[str], inner: tuple, name: str, labels: Hashable
) -> list[ColumnElement[bool]]:  # type: ignore[no-untyped-def]
    """The terms that keep, of an aliased resources table, the current resources of the types bound to
    `type_params` that meet the inner condition of a chain or `_has` and that the caller may see."""
    rows = search_index.alias(f"{name}_si")
    inner_name = f"{name}_i"

    def of_type(column):  # type: ignore[no-untyped-def]
        if len(type_params) == 1:
            return column == bindparam(type_params[0])
        return column.in_([bindparam(t) for t in type_params])

    if inner[0] in ("_id", "_lastUpdated"):
        return [
            of_type(table.c.res_type),
            table.c.deleted.is_(False),
            _column_match(table, inner, inner_name),
            *_visible_to_caller(table, labels, name),
        ]
    if inner[0] == "has":
        # A nested _has: these resources are the ones the inner source resources refer to.
        return [
            of_type(table.c.res_type),
            table.c.deleted.is_(False),
            table.c.res_id.in_(_referring_ids(inner, inner_name, labels, type_params[0])),
            *_visible_to_caller(table, labels, name),
        ]
    return [
        of_type(table.c.res_type),
        table.c.deleted.is_(False),
        table.c.pk.in_(
            select(rows.c.resource_pk).where(
                of_type(rows.c.res_type),
                rows.c.param == bindparam(f"{inner_name}p"),
                _index_match(inner, inner_name, labels, rows),
            )
        ),
        *_visible_to_caller(table, labels, name),
    ]


def _column_match(table, item: tuple, name: str) -> ColumnElement[bool]:  # type: ignore[no-untyped-def]
    """An _id or _lastUpdated condition (shape `item`, values under `name`) on an aliased resources
    table: those are columns of the resource, not index rows."""
    if item[0] == "_id":
        ids = bindparam(name, expanding=True)
        return table.c.res_id.notin_(ids) if item[1] == "not" else table.c.res_id.in_(ids)
    return or_(
        *(
            instant_match(
                table.c.last_updated_us, prefix, bindparam(f"{name}_{j}lo"), bindparam(f"{name}_{j}hi")
            )
            for j, prefix in enumerate(item[1])
        )
    )


def _visible_to_caller(table, labels: Hashable, name: str) -> list[ColumnElement[bool]]:  # type: ignore[no-untyped-def]
    """The terms that keep, of an aliased resources table, what the caller may see."""
    if labels == "none":
        return []
    if labels == "empty":
        return [table.c.pk.is_(None)]
    ra = resource_access.alias(f"{name}_ra")
    visible = ra.c.label.in_([bindparam(f"vis{n}") for n in range(labels[1])])  # type: ignore[index]
    return [table.c.pk.in_(select(ra.c.resource_pk).where(visible))]


def has_value(column: str) -> ColumnElement[bool]:
    """Rows with a value in `column` (date, number or value; query.VALUE_COLUMNS): each kind of row has
    its own partial index, which a condition on the rows' presence alone must name to be read."""
    si = search_index.c
    if column == "date":
        return si.lo_us.isnot(None)
    if column == "number":
        return si.num.isnot(None)
    return si.value.isnot(None)


def _param_match(item: tuple, name: str, si) -> ColumnElement[bool]:  # type: ignore[no-untyped-def]
    """The index rows of the parameter(s) of condition `name`: a compartment's are several."""
    if item[0] == "compartment":
        return si.param.in_([bindparam(f"{name}_p{k}") for k in range(item[1])])
    return si.param == bindparam(f"{name}p")


def _present(
    name: str, item: tuple, match: ColumnElement[bool] | None, drives: bool, fenced: bool = False
) -> ColumnElement[bool]:
    """The resource has index rows of the parameter of condition `name` (shape `item`), matching `match`."""
    r, si = resources.c, search_index.c
    if drives:
        # Uncorrelated: the database reads the matching index rows once and looks the resources up.
        where = [si.res_type == bindparam("rt"), _param_match(item, name, si)]
        return r.pk.in_(select(si.resource_pk).where(*where, *([match] if match is not None else [])))
    # Correlated, without the resource type: only the (resource_pk, param) index serves it, so
    # each probe reads the few index rows of one resource.
    where = [si.resource_pk == r.pk, _param_match(item, name, si)]
    return _probe(*where, *([match] if match is not None else []), fenced=fenced)


def _probe(*where: ColumnElement[bool], fenced: bool) -> ColumnElement[bool]:
    """A correlated EXISTS: one index probe per row the search walks.

    `fenced` (PostgreSQL): OFFSET 0 keeps the planner from turning the EXISTS into a join. The probes
    then run per row in the order chosen here (as SQLite runs them), the plan no longer depends on
    the searched values, and PostgreSQL keeps one generic plan of the prepared statement instead of
    planning each poll again, which cost more than running it.
    """
    if not fenced:
        return exists().where(*where)
    return exists(select(literal_column("1")).where(*where).offset(literal_column("0")))


def _lower_bounded(prefixes: tuple) -> bool:
    return len(prefixes) == 1 and prefixes[0] in ("gt", "ge", "sa", "eq", "ap")


def drivers(shape: tuple) -> list[int | str]:
    """The filters that may drive a search: positive token, reference, uri and string conditions, and
    a _lastUpdated range with a lower bound."""
    found: list[int | str] = []
    for i, item in enumerate(shape[1:]):
        if item[0] == "_lastUpdated" and _lower_bounded(item[1]):
            found.append(BY_UPDATED)
        elif item[0] in ("token", "reference", "uri", "string", "chain", "compartment") and item[1] != "not":
            found.append(i)
    return found


def probe_plan(query: SearchQuery) -> tuple[tuple, dict[str, Any], list[int | str]] | None:
    """The shape, values and candidate drivers of a search, or None when no probe is needed."""
    shape, params = plan(query)
    candidates = drivers(shape)
    if not candidates or any(item == ("_id", "") for item in shape[1:]):
        return None  # nothing selective to count, or _id (a few rows) drives anyway
    return shape, params, candidates


def _updated_bound_name(shape: tuple) -> str:
    """The bound parameter holding the lower bound of the _lastUpdated candidate."""
    i = next(i for i, item in enumerate(shape[1:]) if item[0] == "_lastUpdated")
    return f"c{i}_0lo" if shape[1 + i][1][0] in ("ge", "eq", "ap") else f"c{i}_0hi"


def updated_lower_bound(shape: tuple, params: dict[str, Any]) -> int:
    """The instant from which the _lastUpdated candidate counts rows (at or after it)."""
    return params[_updated_bound_name(shape)]


def candidate_key(shape: tuple, params: dict[str, Any], candidate: int) -> tuple:
    """What identifies the rows an index candidate counts: its shape and its bound values."""
    name = f"c{candidate}"
    values = tuple(
        sorted((k, repr(v)) for k, v in params.items() if k == f"{name}p" or k.startswith(name + "_"))
    )
    return (params["rt"], shape[1 + candidate], values)


def probe_statement(shape: tuple, candidates: list[int | str]) -> Select:
    """One row: for each candidate driver, how many rows it matches, counted up to PROBE_LIMIT."""
    key = ("probe", shape, tuple(candidates))
    cached = _cache.get(key)
    if cached is None:
        r, si = resources.c, search_index.c
        counts = []
        for candidate in candidates:
            if candidate == BY_UPDATED:
                inner = select(r.pk).where(
                    r.res_type == bindparam("rt"),
                    r.last_updated_us >= bindparam(_updated_bound_name(shape)),
                )
            else:
                name = f"c{candidate}"
                inner = select(si.resource_pk).where(
                    si.res_type == bindparam("rt"),
                    _param_match(shape[1 + candidate], name, si),
                    _index_match(shape[1 + candidate], name, shape[0]),
                )
            limited = inner.limit(PROBE_LIMIT).subquery()
            counts.append(select(func.count()).select_from(limited).scalar_subquery())
        cached = _remember(key, select(*counts))
    return cached.stmt


def choose_driver(candidates: list[int | str], counts: tuple[int, ...]) -> int | str:
    best = min(range(len(candidates)), key=lambda k: counts[k])
    return candidates[best] if counts[best] < PROBE_LIMIT else ORDERED


def _filters(key: tuple, driver: int | str | None = None, fenced: bool = False) -> list[ColumnElement[bool]]:
    """The WHERE terms of a search. `driver` None keeps every filter an uncorrelated IN (counts, and
    databases that plan by statistics); otherwise the filter that drives is an IN and the others probes
    (`fenced`: probes the database may not turn into joins, see _probe)."""
    r = resources.c
    by_index = isinstance(driver, int)
    # `res_type || ''` keeps SQLite from reading the type's whole _lastUpdated index instead of the
    # driving rows; the filter is the same.
    filters: list[ColumnElement[bool]] = [
        (r.res_type.concat("") if by_index else r.res_type) == bindparam("rt"),
        r.deleted.is_(False),
    ]
    if key[0] == "empty":
        filters.append(r.pk.is_(None))  # nothing is visible
    elif key[0] != "none":
        ra = resource_access.c
        labels = ra.label.in_([bindparam(f"vis{n}") for n in range(key[0][1])])
        if driver is None:
            filters.append(r.pk.in_(select(ra.resource_pk).where(labels)))
        else:
            filters.append(_probe(ra.resource_pk == r.pk, labels, fenced=fenced))
    for i, item in enumerate(key[1:]):
        name = f"c{i}"
        kind = item[0]
        if kind in ("_id", "_lastUpdated"):
            filters.append(_column_match(resources, item, name))
            continue
        if kind == "has":
            filters.append(r.res_id.in_(_referring_ids(item, name, key[0])))
            continue
        drives = driver is None or driver == i
        if kind == "missing":
            present = _present(name, item, has_value(item[2]), drives, fenced)
            filters.append(not_(present) if item[1] else present)
            continue
        found = _present(name, item, _index_match(item, name, key[0]), drives, fenced)
        filters.append(not_(found) if item[1] == "not" else found)
    return filters


UPDATED_SORTS = ("_lastUpdated", "-_lastUpdated")
# Where resources without a value of the sort parameter go: after all the others, either way.
_NO_VALUE_ASC, _NO_VALUE_DESC = 2**62, -(2**62)


def by_parameter(sort: str | None) -> bool:
    """Whether `sort` orders by search parameters or several keys (not creation order, not _lastUpdated
    alone): the sort values are computed per matching resource, and pages are bound by creation."""
    return sort is not None and sort not in UPDATED_SORTS


def _key_columns(key: SortKey, n: int) -> list[tuple[ColumnElement, bool]]:
    """The column(s) one sort key orders by, each with its direction.

    A date parameter sorts by the earliest start of a resource's ranges going up and the latest end
    going down (the spec's "earliest in the sort order" of a repeating element); the other parameters
    by the least or greatest indexed value (numbers and quantities by value, whatever the unit).
    Resources without a value come last either way: dates through an out-of-range stand-in, texts and
    numbers through a leading "has no value" column (no stand-in text sorts last under every
    collation).
    """
    si, r = search_index.c, resources.c
    if key.kind == "_lastUpdated":
        return [(r.last_updated_us, key.descending)]
    if key.kind == "_id":
        return [(r.res_id, key.descending)]
    if key.kind == "date":
        value = func.max(si.hi_us) if key.descending else func.min(si.lo_us)
    elif key.kind == "number":
        value = func.max(si.num) if key.descending else func.min(si.num)
    else:
        value = func.max(si.value) if key.descending else func.min(si.value)
    per_resource = (
        select(value)
        .where(si.resource_pk == r.pk, si.param == bindparam(f"sortp{n}"), has_value(key.kind))
        .scalar_subquery()
    )
    if key.kind == "date":
        return [
            (func.coalesce(per_resource, _NO_VALUE_DESC if key.descending else _NO_VALUE_ASC), key.descending)
        ]
    missing = case((per_resource.is_(None), 1), else_=0)
    stand_in = literal(0.0, Float) if key.kind == "number" else literal("", String)
    return [(missing, False), (func.coalesce(per_resource, stand_in), key.descending)]


def _order(query: SearchQuery) -> list[tuple[ColumnElement, bool]]:
    """The ORDER BY of a search, each column with its direction, ending with the primary key.

    Creation order (pk) does not move when a resource is updated, so paging by it never skips or
    repeats. _lastUpdated alone is the time of the last write, ties broken by pk: the index
    (res_type, last_updated_us, pk) serves both a _lastUpdated range and this order. Sorted by
    parameters, ties go in creation order, reversed when the last key is descending.
    """
    r = resources.c
    if query.sort is None:
        return [(r.pk, False)]
    if not by_parameter(query.sort):
        descending = query.sort.startswith("-")
        return [(r.last_updated_us, descending), (r.pk, descending)]
    columns = [c for n, key in enumerate(query.sort_keys) for c in _key_columns(key, n)]
    return [*columns, (r.pk, query.sort_keys[-1].descending)]


def position_types(query: SearchQuery) -> tuple[type, ...]:
    """The Python type of each value of the keyset position of `query`'s pages (a paging link is
    checked against them: it comes back from the client)."""
    return tuple(column.type.python_type for column, _ in _order(query))


def _after(order: list[tuple[ColumnElement, bool]]) -> ColumnElement[bool]:
    """Rows strictly after the bound position `after0..n` in this order."""
    bound = [bindparam(f"after{i}") for i in range(len(order))]
    directions = {descending for _, descending in order}
    if len(directions) == 1:
        # One direction: a row-value comparison, which an index on the columns can serve.
        row = tuple_(*(column for column, _ in order))
        return row < tuple_(*bound) if directions.pop() else row > tuple_(*bound)
    alternatives = []
    for i, (column, descending) in enumerate(order):
        equal = [order[j][0] == bound[j] for j in range(i)]
        alternatives.append(and_(*equal, column < bound[i] if descending else column > bound[i]))
    return or_(*alternatives)


def _snapshot_column(sort: str | None):  # type: ignore[no-untyped-def]
    # Sorting by a parameter, the pages see the resources that existed when the search started.
    return resources.c.last_updated_us if sort in UPDATED_SORTS else resources.c.pk


def search_statement(
    query: SearchQuery,
    columns: tuple,
    *,
    snapshot: int | None,
    after: tuple[int, ...] | None,
    limit: int,
    driver: int | str | None = None,
    fenced: bool = False,
) -> tuple[CachedSelect, dict[str, Any]]:
    """The page query: filters, the snapshot bound, the keyset position `after` (the sort columns'
    values of the last row of the previous page), the order, and one row more than the page.
    `fenced`: the probes stay probes (see _probe)."""
    shape, params = plan(query)
    key = ("search", shape, query.sort, snapshot is not None, after is not None, driver, fenced)
    cached = _cache.get(key)
    if cached is None:
        order = _order(query)
        if by_parameter(query.sort):
            columns = (*columns, *(c.label(f"sort{i}") for i, (c, _) in enumerate(order[:-1])))
        stmt = select(*columns).where(*_filters(shape, driver, fenced))
        if snapshot is not None:
            stmt = stmt.where(_snapshot_column(query.sort) <= bindparam("snapshot"))
        if after is not None:
            stmt = stmt.where(_after(order))
        if isinstance(driver, int) and not by_parameter(query.sort):
            # The few driving rows are sorted; an index walk in sort order would read them all.
            order = [(c + 0, descending) for c, descending in order]
        stmt = stmt.order_by(*(c.desc() if descending else c.asc() for c, descending in order))
        cached = _remember(key, stmt.limit(bindparam("limit")))
    params["limit"] = limit
    if by_parameter(query.sort):
        params.update((f"sortp{n}", k.code) for n, k in enumerate(query.sort_keys))
    if snapshot is not None:
        params["snapshot"] = snapshot
    if after is not None:
        params.update((f"after{i}", value) for i, value in enumerate(after))
    return cached, params


def sort_position(
    sort: str | None, row_pk: int, row_last_updated_us: int, row_sort_values: tuple = ()
) -> tuple:
    """The keyset position of a result row under `sort`, for the next page's `after`."""
    if sort is None:
        return (row_pk,)
    if by_parameter(sort):
        return (*row_sort_values, row_pk)
    return (row_last_updated_us, row_pk)


def count_statement(
    query: SearchQuery, *, snapshot: int | None, driver: int | str | None = None
) -> tuple[CachedSelect, dict[str, Any]]:
    shape, params = plan(query)
    key = ("count", shape, query.sort, snapshot is not None, driver)
    cached = _cache.get(key)
    if cached is None:
        stmt = select(func.count()).select_from(resources).where(*_filters(shape, driver))
        if snapshot is not None:
            stmt = stmt.where(_snapshot_column(query.sort) <= bindparam("snapshot"))
        cached = _remember(key, stmt)
    if snapshot is not None:
        params["snapshot"] = snapshot
    return cached, params


def _remember(key: Hashable, stmt: Select) -> CachedSelect:
    if len(_cache) >= _CACHE_LIMIT:
        _cache.clear()
    cached = _cache[key] = CachedSelect(stmt)
    return cached
