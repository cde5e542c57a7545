"""Reading a FHIR search query string into conditions the store can run."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from urllib.parse import urlencode

from adapter.definitions import resource_types
from adapter.errors import InvalidRequestError, Issue
from adapter.fhirio.subsetting import Subset, parse_subset
from adapter.search.dates import MAX_US, MIN_US, date_range
from adapter.search.extract import IDENTIFIER, OF_TYPE, normalise_text, reference_key, split_reference
from adapter.search.params import SearchParam, defined_codes, own_base, params_for

DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
# Result parameters that are understood, and the ones that are only formatting and so are safe to ignore.
_CONTROL = {"_count", "_sort", "_summary", "_elements", "_page", "_total"}
_IGNORED = {"_format", "_pretty"}
_MODIFIERS = {
    "token": {"", "not", "of-type"},
    "string": {"", "contains", "exact"},
    "reference": {"", "identifier"},
    "date": {""},
    "uri": {"", "below", "above"},
    "number": {""},
    "quantity": {""},
    "composite": {""},
}


@dataclass(frozen=True)
class DateValue:
    prefix: str
    lo: int
    hi: int


@dataclass(frozen=True)
class NumberValue:
    """A number or quantity search value: `prefix`, the bounds it compares with (see _parse_number) and,
    for a quantity, the unit's system and code (None: any)."""

    prefix: str
    lo: float
    hi: float
    system: str | None = None
    unit: str | None = None


@dataclass(frozen=True)
class Condition:
    """One search parameter occurrence: its values are ORed; several conditions are ANDed."""

    code: str
    # token | reference | date | string | uri | _id | _lastUpdated | missing | chain | has | compartment
    type: str
    modifier: str
    values: tuple
    param: SearchParam | None = None


@dataclass(frozen=True)
class SortKey:
    """One key of `_sort`: a parameter code (or _id, _lastUpdated), its direction, and what it compares:
    `_lastUpdated`, `_id`, `date` (ranges), `value` (the indexed text of string, token, reference and
    uri parameters) or `number` (number and quantity values, whatever their unit)."""

    code: str
    descending: bool
    kind: str


MAX_SORT_KEYS = 4


@dataclass
class SearchQuery:
    res_type: str
    conditions: list[Condition] = field(default_factory=list)
    count: int = 50
    # The sort keys as one text ("status,-authored-on"; "-" for descending); None: creation order
    sort: str | None = None
    sort_keys: tuple[SortKey, ...] = ()
    summary_count: bool = False
    # _total=none: the client will not use Bundle.total, so a page need not count the matches.
    total_wanted: bool = True
    cursor: str | None = None
    warnings: list[Issue] = field(default_factory=list)
    # The query re-emitted without paging state, for self and next links.
    canonical: list[tuple[str, str]] = field(default_factory=list)
    # _include: (reference parameter code, target type or None)
    includes: list[tuple[str, str | None]] = field(default_factory=list)
    # _include:iterate: (source type, reference parameter code, target type or None), applied to the
    # matches and to what was included, again on what that brought in
    iterated_includes: list[tuple[str, str, str | None]] = field(default_factory=list)
    # _revinclude: (source type, its reference parameter code) whose references point at the matches
    revincludes: list[tuple[str, str]] = field(default_factory=list)
    # _revinclude:iterate: (source type, reference parameter code, target type or None), the resources
    # pointing at the matches or at what was included, again at what that brought in
    iterated_revincludes: list[tuple[str, str, str | None]] = field(default_factory=list)
    # Access labels a resource needs one of to be found; None = no restriction (set by the caller's guard).
    visible_labels: frozenset[str] | None = None
    # What _summary (true, text, data) and _elements keep of each resource; None = all of it.
    subset: Subset | None = None
    # A compartment search ([base]/Patient/123/Procedure): the compartment's type and id, for the links.
    compartment: tuple[str, str] | None = None

    def query_string(self) -> str:
        return urlencode(self.canonical)


def split_escaped(text: str, separator: str) -> list[str]:
    """`text` cut at each `separator` that no backslash escapes; the escapes stay (see unescape).

    FHIR search values use `,` between alternatives, `|` between system and code and `$` between the
    parts of a composite; `\\,`, `\\|`, `\\$` and `\\\\` stand for the characters themselves.
    """
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def unescape(text: str) -> str:
    """A search value with its escapes (`\\,` `\\|` `\\$` `\\\\`) resolved; other backslashes stay."""
    return _ESCAPE.sub(r"\1", text)


_ESCAPE = re.compile(r"\\([\\,|$])")


def _parse_date(code: str, raw: str) -> DateValue:
    prefix = raw[:2] if raw[:2] in DATE_PREFIXES else "eq"
    text = raw[2:] if raw[:2] in DATE_PREFIXES else raw
    found = date_range(text)
    if found is None:
        raise InvalidRequestError(f"search parameter {code}: {raw!r} is not a FHIR date", expression=code)
    lo, hi = found
    if prefix == "ap":
        # R4 search.html, ap: for a date, approximately means within 10% of the gap between now and
        # the date, either side of the range the value covers.
        slack = abs(time.time_ns() // 1000 - lo) // 10
        lo, hi = max(MIN_US, lo - slack), min(MAX_US, hi + slack)
    return DateValue(prefix, lo, hi)


def _parse_composite(param: SearchParam, raw: str) -> tuple:
    """`code$value` (a token, then the value of the second component): one parsed value per component."""
    parts = split_escaped(raw, "$")
    if len(parts) != len(param.components) or not all(parts):
        raise InvalidRequestError(
            f"search parameter {param.code}: {raw!r} needs {len(param.components)} values separated by $",
            expression=param.code,
        )
    return tuple(
        _parse_value(SearchParam(param.code, kind, ()), part)
        for (kind, _), part in zip(param.components, parts, strict=True)
    )


def _parse_value(param: SearchParam, raw: str) -> object:
    """One searched value of a parameter (or of a composite's component) of a plain type."""
    if param.type == "date":
        return _parse_date(param.code, raw)
    if param.type == "token":
        return _parse_token(raw)
    if param.type == "reference":
        return _parse_reference(param.code, unescape(raw), param)[0]
    if param.type == "string":
        return normalise_text(unescape(raw))
    if param.type in ("number", "quantity"):
        return _parse_number(param, raw)
    return unescape(raw)


def _parse_number(param: SearchParam, raw: str) -> NumberValue:
    """`[prefix]number` (a quantity may add `|system|code` or `||code`).

    eq, ne and a bare number compare with the range the number's own precision implies (`100` is
    [99.5, 100.5), `1.50` is [1.495, 1.505), `1e2` [50, 150)), and so do sa and eb: a value that starts
    after (ends before) that range does not overlap it; ap with 10% either side; gt, ge, lt and le
    with the number itself (lo == hi), R4 search.html's "greater than exactly 100". Units are matched
    as written: no conversion between them.
    """
    prefix = raw[:2] if raw[:2] in DATE_PREFIXES else "eq"
    text = raw[2:] if raw[:2] in DATE_PREFIXES else raw
    system = unit = None
    if param.type == "quantity" and "|" in text:
        parts = split_escaped(text, "|")
        if len(parts) != 3 or not parts[2]:
            raise InvalidRequestError(
                f"search parameter {param.code}: {raw!r} is not [prefix]number|system|code",
                expression=param.code,
            )
        text, system, unit = parts[0], unescape(parts[1]), unescape(parts[2])
    try:
        number = Decimal(text)
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise InvalidRequestError(
            f"search parameter {param.code}: {raw!r} is not a number", expression=param.code
        )
    try:
        if prefix in ("eq", "ne", "sa", "eb"):
            half = Decimal(1).scaleb(number.as_tuple().exponent) / 2  # type: ignore[arg-type]
            lo, hi = float(number - half), float(number + half)
        elif prefix == "ap":
            spread = abs(number) / 10 or Decimal(1).scaleb(number.as_tuple().exponent) / 2  # type: ignore[arg-type]
            lo, hi = float(number - spread), float(number + spread)
        else:
            lo = hi = float(number)
    except ArithmeticError:
        # An exponent beyond the decimal context's range (1e999999999, 1e-999999999): the bounds of its
        # precision cannot be computed, and no stored value is that large or that precise.
        raise InvalidRequestError(
            f"search parameter {param.code}: {raw!r} is out of the range this server compares",
            expression=param.code,
        ) from None
    return NumberValue(prefix, lo, hi, system or None, unit or None)


def _parse_token(raw: str) -> tuple[str | None, str | None]:
    parts = split_escaped(raw, "|")
    if len(parts) == 1:
        return None, unescape(raw)
    system, code = unescape(parts[0]), unescape("|".join(parts[1:]))
    return system, (code or None)


def _of_type(code: str, raw: str) -> tuple[str, str]:
    """`<type system>|<type code>|<value>`, all three present: as stored, ("system|code", value)."""
    parts = split_escaped(raw, "|")
    parts = [unescape(p) for p in parts[:2]] + ([unescape("|".join(parts[2:]))] if len(parts) > 2 else [])
    if len(parts) != 3 or not all(parts):
        raise InvalidRequestError(
            f"search parameter {code}:of-type: {raw!r} is not <type system>|<type code>|<value>",
            expression=f"{code}:of-type",
        )
    return f"{parts[0]}|{parts[1]}", parts[2]


def _parse_reference(code: str, raw: str, param: SearchParam, alias: str | None = None) -> tuple:
    """The (type, key) pairs one reference value matches, as extract.reference_key indexes them: a
    relative reference or an id by the id, an absolute one on another server by its URL. `alias`:
    the base the request came in at, when no public base is configured; absolute references on it
    were indexed by their URL, and are this server's, so the id and that URL both match."""
    if "://" not in raw:
        split = split_reference(raw)
        if split and split[1]:
            found: tuple[str | None, str] = split
        elif "/" in raw or not raw:
            raise InvalidRequestError(f"search parameter {code}: {raw!r} is not a reference", expression=code)
        else:
            found = (param.targets[0] if len(param.targets) == 1 else None), raw
        if alias is None:
            return (found,)
        types = param.targets if found[0] is None else (found[0],)
        return found, *((kind, f"{alias}/{kind}/{found[1]}") for kind in types)
    split, key = split_reference(raw), reference_key(raw)
    if not split or not split[1] or not key:
        raise InvalidRequestError(f"search parameter {code}: {raw!r} is not a reference", expression=code)
    if key != split and alias is not None and key[1] == f"{alias}/{split[0]}/{split[1]}":
        return split, key
    return (key,)


def _typed_reference(param: SearchParam, target: str, value: str, alias: str | None) -> tuple:
    """The values of `<code>:<target>`: an id, or a reference to a resource of that type."""
    name = f"{param.code}:{target}"
    if param.targets and target not in param.targets:
        raise InvalidRequestError(f"{param.code} never points at a {target}", expression=name)
    if "/" not in value:
        value = f"{target}/{value}"
    split = split_reference(value)
    if not split or not split[1] or split[0] != target:
        raise InvalidRequestError(f"search parameter {name}: {value!r} is not a {target}", expression=name)
    return _parse_reference(name, value, param, alias)


def parse_search(
    res_type: str,
    args: list[tuple[str, str]],
    *,
    strict: bool = False,
    default_count: int = 50,
    max_count: int = 1000,
    server_base: str | None = None,
) -> SearchQuery:
    """Parse the (name, value) pairs of a search request for `res_type`; `server_base` is the server's
    base as the request reached it (references on it are this server's).

    Raises:
        InvalidRequestError: a malformed value, or (strict handling) an unknown parameter.
    """
    query = SearchQuery(res_type, count=default_count)
    known = params_for(res_type)
    # Only when no public base is configured do absolute references to this server lack their id in
    # the index (extract.reference_key).
    alias = server_base.rstrip("/") if server_base and not own_base() else None
    summary: str | None = None
    elements: list[str] = []
    for name, raw in args:
        if "\x00" in name or "\x00" in raw:
            # No FHIR value holds a NUL (control characters are refused on write), and PostgreSQL text
            # cannot hold one either: the database would fail on the comparison.
            where = name if "\x00" not in name else repr(name)
            raise InvalidRequestError(
                f"search parameter {where}: a NUL character is not allowed", expression=where
            )
        base, _, modifier = name.partition(":")
        if base in _IGNORED:
            query.canonical.append((name, raw))  # kept in links so that next pages come in the same format
            continue
        if base == "_page":
            query.cursor = raw
            continue
        query.canonical.append((name, raw))
        if base == "_count":
            if not (raw.isascii() and raw.isdigit()):  # isdigit() alone accepts "²", which int() refuses
                raise InvalidRequestError(
                    f"_count must be a non-negative integer, got {raw!r}", expression="_count"
                )
            query.count = min(int(raw), max_count)
        elif base == "_sort":
            # Several keys come comma-separated, or (as some clients send them) in repeated _sort.
            keys = _parse_sort(raw, known, query.sort_keys)
            if keys is None:
                _unknown(
                    query,
                    strict,
                    name,
                    f"_sort={raw} is not supported (up to {MAX_SORT_KEYS} keys, each _id, _lastUpdated or "
                    f"a date, string, token, reference, uri, number or quantity parameter of {res_type}, "
                    "with - for descending, none repeated)",
                )
                query.canonical.pop()
            else:
                query.sort_keys = keys
                query.sort = ",".join(("-" if k.descending else "") + k.code for k in keys)
        elif base == "_summary":
            if summary is not None:
                raise InvalidRequestError("_summary may be given once", expression="_summary")
            summary = raw
            query.summary_count = raw == "count"
        elif base == "_elements":
            elements.append(raw)
        elif base == "_total":
            if raw not in ("none", "estimate", "accurate"):
                raise InvalidRequestError(
                    f"_total must be none, estimate or accurate, got {raw!r}", expression="_total"
                )
            query.total_wanted = raw != "none"
        elif base == "_include":
            if modifier == "iterate":
                source = raw.partition(":")[0]
                if source not in resource_types():
                    raise InvalidRequestError(
                        f"_include:iterate={raw!r}: {source!r} is not a resource type", expression="_include"
                    )
                code, target = _parse_include(source, raw)
                query.iterated_includes.append((source, code, target))
            elif modifier:
                _unknown(query, strict, name, f"_include:{modifier} is not supported")
                query.canonical.pop()
            else:
                query.includes.append(_parse_include(res_type, raw))
        elif base == "_revinclude":
            if modifier == "iterate":
                query.iterated_revincludes.append(_parse_iterated_revinclude(raw))
                continue
            if modifier:
                _unknown(query, strict, name, f"_revinclude:{modifier} is not supported")
                query.canonical.pop()
                continue
            found = _parse_revinclude(res_type, raw)
            if found is not None:
                query.revincludes.append(found)
        elif base == "_has":
            has = _parse_has(res_type, name, raw, alias)
            if has is None:
                _unknown(query, strict, name, f"{name!r}: _has nested more than {MAX_HAS_LEVELS} levels")
                query.canonical.pop()
            else:
                query.conditions.append(has)
        elif base in RESOURCE_COLUMNS:
            query.conditions.append(_column_condition(base, modifier, raw))
        elif base in known and "." not in modifier:
            query.conditions.append(_parse_condition(known[base], modifier, raw, alias))
        elif "." in name and name.partition(".")[0].partition(":")[0] in known:
            chained = _parse_chain(res_type, name, raw, known, alias)
            if chained is None:
                _unknown(
                    query, strict, name, f"chained parameter {name!r} has more than {MAX_CHAIN_LINKS} links"
                )
                query.canonical.pop()
            else:
                query.conditions.append(chained)
        else:
            _unknown(query, strict, name, _not_indexed(res_type, name))
            query.canonical.pop()
    if not query.summary_count:
        query.subset = parse_subset(res_type, summary, elements, strict=strict, warnings=query.warnings)
        if summary == "text" and (
            query.includes or query.revincludes or query.iterated_includes or query.iterated_revincludes
        ):
            raise InvalidRequestError(
                "_include and _revinclude cannot be combined with _summary=text", expression="_summary"
            )
    return query


# Parameters of every type that are columns of the stored resource rather than index rows.
RESOURCE_COLUMNS = ("_id", "_lastUpdated")


def _column_condition(code: str, modifier: str, raw: str) -> Condition:
    """A condition on _id (a token: :not is every resource but those ids) or _lastUpdated (a date);
    other modifiers are refused."""
    if modifier not in (("", "not") if code == "_id" else ("",)):
        raise InvalidRequestError(f"modifier :{modifier} is not supported on {code}", expression=code)
    if code == "_id":
        ids = tuple(unescape(v) for v in split_escaped(raw, ",") if v)
        if not ids:
            raise InvalidRequestError("search parameter _id has no value", expression="_id")
        return Condition("_id", "_id", modifier, ids)
    return Condition(code, code, "", tuple(_parse_date(code, v) for v in raw.split(",")))


def _split_revinclude(raw: str, name: str) -> tuple[str, SearchParam, str | None]:
    """`Source:param[:Target]`: the source type, its reference parameter and the target type named."""
    parts = raw.split(":")
    if len(parts) not in (2, 3) or parts[0] not in resource_types():
        raise InvalidRequestError(
            f"{name}={raw!r}: expected <resource type>:<reference parameter>[:<target type>]",
            expression="_revinclude",
        )
    param = _reference_param(parts[0], parts[1], "_revinclude", "_revinclude")
    target = parts[2] if len(parts) == 3 else None
    _check_target(param, parts[0], target, "_revinclude")
    return parts[0], param, target


def _parse_iterated_revinclude(raw: str) -> tuple[str, str, str | None]:
    """_revinclude:iterate: it may point at any type the walk reaches, or at the target named."""
    source, param, target = _split_revinclude(raw, "_revinclude:iterate")
    if target is not None and param.targets and target not in param.targets:
        raise InvalidRequestError(
            f"_revinclude:iterate: {source}:{param.code} never points at a {target}", expression="_revinclude"
        )
    return source, param.code, target


def _parse_revinclude(res_type: str, raw: str) -> tuple[str, str] | None:
    """None when the target named is another type (nothing of this search can match)."""
    source, param, target = _split_revinclude(raw, "_revinclude")
    if param.targets and res_type not in param.targets:
        raise InvalidRequestError(
            f"_revinclude: {source}:{param.code} never points at a {res_type}", expression="_revinclude"
        )
    if target is not None and target != res_type:
        return None
    return source, param.code


def _reference_param(res_type: str, code: str, context: str, expression: str) -> SearchParam:
    """The reference search parameter `code` of `res_type`, or a 400 naming where it was asked for."""
    param = params_for(res_type).get(code)
    if param is None or param.type != "reference":
        raise InvalidRequestError(
            f"{context}: {code!r} is not a reference parameter of {res_type}", expression=expression
        )
    return param


def _parse_include(res_type: str, raw: str) -> tuple[str, str | None]:
    parts = raw.split(":")
    if len(parts) not in (2, 3) or parts[0] != res_type:
        raise InvalidRequestError(
            f"_include={raw!r}: expected {res_type}:<reference parameter>[:<target type>]",
            expression="_include",
        )
    param = _reference_param(res_type, parts[1], "_include", "_include")
    target = parts[2] if len(parts) == 3 else None
    _check_target(param, res_type, target, "_include")
    return parts[1], target


def _check_target(param: SearchParam, source: str, target: str | None, expression: str) -> None:
    """The target type of an _include or _revinclude must be one the reference can point at."""
    if target is not None and (
        target not in resource_types() or (param.targets and target not in param.targets)
    ):
        raise InvalidRequestError(
            f"{expression}: {source}:{param.code} never points at a {target}", expression=expression
        )


# `_has` inside `_has` (Patient?_has:ServiceRequest:subject:_has:Task:focus:status=...), up to this many
# levels; deeper ones are ignored with a warning.
MAX_HAS_LEVELS = 3


def _parse_has(res_type: str, name: str, raw: str, alias: str | None) -> Condition | None:
    """`_has:Task:focus:business-status=...`: resources that a matching Task refers to through `focus`;
    the parameter may itself be a `_has` on the Task. None when nested deeper than MAX_HAS_LEVELS."""
    parts = name.split(":")
    if len(parts) > 4 and parts[3] == "_has":
        if name.count("_has") > MAX_HAS_LEVELS:
            return None
        source, reference = parts[1], parts[2]
        _check_has_link(res_type, name, source, reference)
        inner_has = _parse_has(source, ":".join(parts[3:]), raw, alias)
        if inner_has is None:
            return None
        return Condition("_has", "has", source, (source, reference, inner_has), None)
    if len(parts) != 4:
        raise InvalidRequestError(
            f"{name}: expected _has:<resource type>:<reference parameter>:<parameter>", expression=name
        )
    source, reference, inner_code = parts[1:]
    _check_has_link(res_type, name, source, reference)
    if inner_code in RESOURCE_COLUMNS:
        return Condition(
            "_has", "has", source, (source, reference, _column_condition(inner_code, "", raw)), None
        )
    inner = params_for(source).get(inner_code)
    if inner is None:
        raise InvalidRequestError(
            f"{name}: {inner_code!r} is not a search parameter of {source}", expression=name
        )
    return Condition(
        "_has", "has", source, (source, reference, _parse_condition(inner, "", raw, alias)), None
    )


def _check_has_link(res_type: str, name: str, source: str, reference: str) -> None:
    if source not in resource_types():
        raise InvalidRequestError(f"{name}: {source!r} is not a resource type", expression=name)
    param = _reference_param(source, reference, name, name)
    if param.targets and res_type not in param.targets:
        raise InvalidRequestError(
            f"{name}: {source}.{reference} never points at a {res_type}", expression=name
        )


# Links of a chain (`focus:ServiceRequest.subject:Patient.identifier` has two); longer ones are ignored
# with a warning: each link is a nested query.
MAX_CHAIN_LINKS = 3


def _parse_chain(
    res_type: str, name: str, raw: str, known: dict[str, SearchParam], alias: str | None
) -> Condition | None:
    """`subject:Patient.identifier=...`, `patient.identifier=...`, `focus.subject.identifier=...`:
    resources whose reference points at a resource matching the rest of the chain. None when the chain
    has more than MAX_CHAIN_LINKS links."""
    if name.count(".") > MAX_CHAIN_LINKS:
        return None
    head, _, inner_name = name.partition(".")
    code, _, target = head.partition(":")
    param = known.get(code)
    if param is None:
        raise InvalidRequestError(
            f"{name}: {code!r} is not a search parameter of {res_type}", expression=name
        )
    if param.type != "reference":
        raise InvalidRequestError(
            f"{code} is not a reference parameter: it cannot be chained", expression=name
        )
    inner_head = inner_name.partition(".")[0]
    inner_code, _, inner_modifier = inner_head.partition(":")
    if target and target not in param.targets:
        raise InvalidRequestError(f"{code} of {res_type} never points at a {target}", expression=name)
    if inner_code in RESOURCE_COLUMNS and "." not in inner_name:
        # Every type has _id and _lastUpdated (Task?focus:ServiceRequest._lastUpdated=gt...).
        if inner_modifier:
            raise InvalidRequestError(
                f"{name}: :{inner_modifier} is not supported in a chain", expression=name
            )
        targets = (target,) if target else tuple(sorted(param.targets))
        if not targets:
            raise InvalidRequestError(
                f"{name}: name the type, as in {code}:Patient.{inner_name}", expression=name
            )
        inner_column = _column_condition(inner_code, "", raw)
        return Condition(code, "chain", ",".join(targets), (targets, inner_column), param)
    if target:
        candidates = [target]
    else:
        # Every type the reference may point at that has the parameter (Observation?patient.identifier
        # looks at Patient and Group identifiers), as long as it means the same kind of value in each.
        candidates = sorted(t for t in param.targets if inner_code in params_for(t))
        kinds = {params_for(t)[inner_code].type for t in candidates}
        if len(kinds) > 1:
            listed = ", ".join(candidates[:5]) + (
                f" and {len(candidates) - 5} more" if len(candidates) > 5 else ""
            )
            raise InvalidRequestError(
                f"{name}: {inner_code} is not the same kind of parameter on {listed}; "
                f"name the type, as in {code}:{candidates[0]}.{inner_name}",
                expression=name,
            )
    inner = params_for(candidates[0]).get(inner_code) if candidates else None
    if inner is None:
        raise InvalidRequestError(
            f"{name}: {inner_code!r} is not a search parameter of {target or 'what ' + code + ' points at'}",
            expression=name,
        )
    targets = tuple(candidates)
    if "." in inner_name:
        # The next link, read from each type this one may reach: they must agree on where it leads.
        links = {_parse_chain(t, inner_name, raw, params_for(t), alias) for t in candidates}
        if len(links) > 1:
            raise InvalidRequestError(
                f"{name}: {inner_head} leads to different types from {', '.join(candidates)}; "
                f"name the type, as in {code}:{candidates[0]}.{inner_name}",
                expression=name,
            )
        return Condition(code, "chain", ",".join(targets), (targets, links.pop()), param)
    if inner_modifier in ("missing", "not"):
        raise InvalidRequestError(f"{name}: :{inner_modifier} is not supported in a chain", expression=name)
    return Condition(
        code,
        "chain",
        ",".join(targets),
        (targets, _parse_condition(inner, inner_modifier, raw, alias)),
        param,
    )


def _parse_condition(param: SearchParam, modifier: str, raw: str, alias: str | None = None) -> Condition:
    if modifier == "missing":
        if raw not in ("true", "false"):
            raise InvalidRequestError(f"{param.code}:missing takes true or false", expression=param.code)
        # A composite's values are the rows of its first component (search_sql._plan_condition).
        code = f"{param.code}$0" if param.type == "composite" else param.code
        kind = param.components[0][0] if param.type == "composite" else param.type
        return Condition(code, "missing", "missing", (raw == "true", VALUE_COLUMNS.get(kind, "value")), param)
    if param.type == "composite" and modifier:
        raise InvalidRequestError(
            f"modifier :{modifier} is not supported on {param.code} (composite)", expression=param.code
        )
    typed = param.type == "reference" and modifier in resource_types()
    if modifier not in _MODIFIERS[param.type] and not typed:
        raise InvalidRequestError(
            f"modifier :{modifier} is not supported on {param.code} ({param.type})", expression=param.code
        )
    pieces = [v for v in split_escaped(raw, ",") if v != ""]
    if not pieces:
        raise InvalidRequestError(f"search parameter {param.code} has no value", expression=param.code)
    if typed:
        # `subject:Patient=23`, the target type as a modifier: the same search as subject=Patient/23.
        values = tuple(pair for v in pieces for pair in _typed_reference(param, modifier, unescape(v), alias))
        return Condition(param.code, "reference", "", values, param)
    if modifier == "identifier":
        # Matched against the `<code>:identifier` index rows, as a token.
        return Condition(param.code + IDENTIFIER, "token", "", tuple(_parse_token(v) for v in pieces), param)
    if modifier == "of-type":
        return Condition(
            param.code + OF_TYPE, "token", "", tuple(_of_type(param.code, v) for v in pieces), param
        )
    if param.type == "composite":
        values: tuple = tuple(_parse_composite(param, v) for v in pieces)
    elif modifier in ("below", "above"):
        values = tuple(_uri_hierarchy(param.code, modifier, unescape(v)) for v in pieces)
    elif param.type == "reference":
        values = tuple(
            pair for v in pieces for pair in _parse_reference(param.code, unescape(v), param, alias)
        )
    elif modifier == "exact":
        # The index keeps each string folded (for plain and :contains searches) and as written.
        values = tuple((normalise_text(unescape(v)), unescape(v)) for v in pieces)
    else:
        values = tuple(_parse_value(param, v) for v in pieces)
    return Condition(param.code, param.type, modifier, values, param)


def _uri_hierarchy(code: str, modifier: str, value: str) -> tuple[str, ...]:
    """For `:below`, the URL without a trailing slash; for `:above`, the URL and each of its parents,
    with and without a trailing slash. R4 search.html (uri): both modifiers compare URLs by path
    segments (`url:below=http://a/b` finds http://a/b/c, not http://a/bc), and do not apply to URNs."""
    name = f"{code}:{modifier}"
    if value.lower().startswith("urn:"):
        raise InvalidRequestError(
            f"search parameter {name}: {value!r} is a URN; :{modifier} applies to URLs only", expression=name
        )
    # The scheme and authority are never cut: http://acme.org is the highest parent.
    scheme_end = value.find("://")
    root = 0 if scheme_end < 0 else value.find("/", scheme_end + 3)
    root = len(value) if root < 0 else root
    path_end = min((i for i in (value.find("?", root), value.find("#", root)) if i >= 0), default=len(value))
    path = value[:path_end].rstrip("/")
    path = path if len(path) >= root else value[:root]
    if modifier == "below":
        return (path,)
    parents = [value] if path_end < len(value) else []
    while True:
        parents += [path, path + "/"]
        cut = path.rfind("/")
        if cut < root or cut <= 0:
            return tuple(dict.fromkeys(parents))
        path = path[:cut]


# The index column that holds a parameter type's values ("value" also for strings' folded text).
VALUE_COLUMNS = {
    "date": "date",
    "string": "value",
    "token": "value",
    "reference": "value",
    "uri": "value",
    "number": "number",
    "quantity": "number",
}


def _parse_sort(
    raw: str, known: dict[str, SearchParam], before: tuple[SortKey, ...]
) -> tuple[SortKey, ...] | None:
    """The keys of a `_sort` value added to those already given; None when any key is not sortable."""
    keys = list(before)
    for item in raw.split(","):
        item = item.strip()
        descending = item.startswith("-")
        code = item[1:] if descending else item
        if code in ("_lastUpdated", "_id"):
            kind = code
        elif code in known and known[code].type in VALUE_COLUMNS:
            kind = VALUE_COLUMNS[known[code].type]
        else:
            return None
        if any(k.code == code for k in keys):
            return None
        keys.append(SortKey(code, descending, kind))
    return tuple(keys) if len(keys) <= MAX_SORT_KEYS else None


def _not_indexed(res_type: str, name: str) -> str:
    """Why a parameter this server has no index for is not searched: unknown, or an R4 one it does not
    support (Bundle?composition, whose expression reaches into a resource inside the Bundle)."""
    code = name.partition(".")[0].partition(":")[0]
    if code in defined_codes(res_type):
        return f"search parameter {name!r}: {code} of {res_type} is not supported by this server"
    return f"unknown search parameter {name!r} for {res_type}"


def _unknown(query: SearchQuery, strict: bool, name: str, message: str) -> None:
    """A parameter the server cannot apply: 400 under strict handling, else ignored with a warning
    (R4 search.html, handling errors); both name it."""
    if strict:
        raise InvalidRequestError(message, expression=name)
    query.warnings.append(Issue("warning", "not-supported", f"{message}; ignored", (name,)))
