"""Checks of primitive values: JSON type, the regex of each primitive type, and what a regex cannot say."""

from __future__ import annotations

import binascii
import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from typing import Any

from adapter.definitions import element_info, primitive_json_types

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
# FHIR strings are limited to 1 MB; base64 data is exempt (attachments can be large).
MAX_STRING = 1024 * 1024
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# Lazy `[^>]*?`: the same matches as the greedy form, found scanning forward from `<div` (xmlns comes
# first in nearly every narrative) instead of backtracking from the end of the tag.
_XHTML_DIV = re.compile(r'\s*<div\b[^>]*?\bxmlns\s*=\s*["\']http://www\.w3\.org/1999/xhtml["\']', re.S)
_XHTML_FORBIDDEN = re.compile(r"<(script|form|base|link|xlink|object|applet|iframe|embed)\b", re.I)
_TAG = re.compile(r"<[^>]*>")
# A non-space character right after a `>` lies outside every `<...>` tag: the narrative has text.
_TEXT_AFTER_TAG = re.compile(r">\s*[^<\s]")
_DATE_PARTS = re.compile(r"(\d{4})-(\d{2})-(\d{2})")

# A checker returns None when the value is fine, else the reason it is not.
Checker = Callable[[Any], str | None]


def json_type_of(type_code: str) -> str | None:
    """ "string" | "boolean" | "integer" | "decimal" for a primitive type code, None for complex types."""
    return primitive_json_types().get(type_code)


def _json_type_check(json_type: str) -> Checker:
    if json_type == "boolean":

        def check(value: Any) -> str | None:
            return None if value is True or value is False else "must be a JSON boolean"

    elif json_type == "integer":

        def check(value: Any) -> str | None:
            if type(value) is int:
                return None
            if isinstance(value, Decimal | float) and not isinstance(value, bool):
                return "must be a JSON integer (no decimal point or exponent)"
            return "must be a JSON number"

    elif json_type == "decimal":

        def check(value: Any) -> str | None:
            if type(value) is int or (isinstance(value, Decimal) and value.is_finite()):
                return None
            if type(value) is float and value == value and value not in (float("inf"), float("-inf")):
                return None
            return "must be a JSON number"

    else:

        def check(value: Any) -> str | None:
            return None if type(value) is str else "must be a JSON string"

    return check


def _valid_calendar_date(value: str) -> bool:
    match = _DATE_PARTS.match(value)
    if match is None:
        return True
    try:
        dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return False
    return True


def _base64_ok(value: str) -> bool:
    compact = "".join(value.split())
    if len(compact) % 4:
        return False
    try:
        binascii.a2b_base64(compact.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return False
    return True


def _regex(type_code: str) -> str | None:
    try:
        return element_info(type_code).regex
    except KeyError:
        return None


@cache
def _pattern(type_code: str) -> re.Pattern[str] | None:
    # The regexes come from XML Schema / Java, where \s and \S are ASCII-only: a no-break space is
    # not whitespace there, so ASCII mode keeps French typography (U+202F) valid in strings.
    regex = _regex(type_code)
    return re.compile(f"(?:{regex})", re.ASCII) if regex else None


@cache
def _fast_pattern(type_code: str) -> re.Pattern[str] | None:
    """The type's regex as the hot path runs it (control characters are tested apart, see `_no_control`)."""
    regex = _regex(type_code)
    if not regex:
        return None
    return re.compile(r"(?s)(?:" + regex + ")", re.ASCII)


# Predicates equal to a type's regex for printable values (no control characters, and no whitespace
# but the space), keyed by the regex text so that a different definition falls back to the regex.
_PRINTABLE_SHORTCUTS: dict[str, Callable[[str], bool]] = {
    r"[ \r\n\t\S]+": lambda value: True,  # string, markdown: anything but \f and \v
    r"\S*": lambda value: " " not in value,  # uri, url, canonical
    r"[^\s]+(\s[^\s]+)*": lambda value: (  # code: single spaces between non-spaces
        value[0] != " " and value[-1] != " " and "  " not in value
    ),
}


def _no_control(value: str) -> bool:
    """True when `value` has no control character other than tab, CR and LF.

    Printable text cannot hold one, and `isprintable` runs in C without the regex engine's per-character
    cost; text with a line break, a tab or a non-printable character gets the exact regex test.
    """
    return value.isprintable() or _CONTROL.search(value) is None


def _string_rules(type_code: str) -> Checker:
    pattern = _pattern(type_code)
    calendar = type_code in ("date", "dateTime", "instant")
    is_base64 = type_code == "base64Binary"
    is_xhtml = type_code == "xhtml"

    def check(value: str) -> str | None:
        if not value:
            return "must not be empty"
        if is_base64:
            return None if _base64_ok(value) else "is not valid base64"
        if len(value) > MAX_STRING:
            return "is longer than 1 MB"
        if not _no_control(value):
            return "contains control characters"
        if is_xhtml:
            if not _XHTML_DIV.match(value):
                return "must be an XHTML <div> element in the XHTML namespace"
            if _XHTML_FORBIDDEN.search(value):
                return "contains XHTML elements not allowed in a narrative"
            if (
                _TEXT_AFTER_TAG.search(value) is None
                and not _TAG.sub("", value).strip()
                and "<img" not in value
            ):
                return "the narrative has no content (txt-2)"
            return None
        if pattern is not None and pattern.fullmatch(value) is None:
            return f"is not a valid {type_code}"
        if calendar and not _valid_calendar_date(value):
            return f"is not a valid {type_code} (no such day)"
        return None

    return check


def _integer_rules(type_code: str) -> Checker:
    low = {"positiveInt": 1, "unsignedInt": 0}.get(type_code, INT32_MIN)

    def check(value: int) -> str | None:
        if value < low or value > INT32_MAX:
            return f"is out of range for {type_code} ({low}..{INT32_MAX})"
        return None

    return check


@cache
def primitive_checker(type_code: str) -> Checker:
    """One function checking JSON type and lexical rules of a primitive type (cached per type).

    Valid values take one short test; only a value that fails it goes through the detailed checks
    that say what is wrong.
    """
    json_type = json_type_of(type_code) or "string"
    detailed = _detailed_checker(type_code, json_type)
    if json_type == "boolean":
        return lambda value: None if value is True or value is False else detailed(value)
    if json_type == "integer":
        low = {"positiveInt": 1, "unsignedInt": 0}.get(type_code, INT32_MIN)
        return lambda value: None if type(value) is int and low <= value <= INT32_MAX else detailed(value)
    if json_type == "decimal":
        return lambda value: (
            None if type(value) is int or (type(value) is Decimal and value.is_finite()) else detailed(value)
        )
    pattern = _fast_pattern(type_code)
    if pattern is None or type_code == "base64Binary":
        return detailed
    fullmatch = pattern.fullmatch
    control = _CONTROL.search
    if type_code in ("date", "dateTime", "instant"):

        def check_date(value: Any) -> str | None:
            if (
                type(value) is str
                and fullmatch(value) is not None
                and (len(value) < 10 or value[8:10] <= "28")
                and _no_control(value)
            ):
                return None
            return detailed(value)

        return check_date

    def check_string(value: Any) -> str | None:
        # _no_control inlined: this runs for most values of every resource.
        if (
            type(value) is str
            and value  # `\S*` (uri) matches "", but no FHIR primitive may be empty
            and (value.isprintable() or control(value) is None)
            and fullmatch(value) is not None
            and len(value) <= MAX_STRING
        ):
            return None
        return detailed(value)

    shortcut = _PRINTABLE_SHORTCUTS.get(_regex(type_code) or "")
    if shortcut is None:
        return check_string

    def check_printable(value: Any) -> str | None:
        # Printable text (most values) is judged without the regex engine; anything else, or a
        # value the shortcut rejects, takes the full path above to be judged or explained.
        if (
            type(value) is str
            and value
            and value.isprintable()
            and shortcut(value)
            and len(value) <= MAX_STRING
        ):
            return None
        return check_string(value)

    return check_printable


def _detailed_checker(type_code: str, json_type: str) -> Checker:
    type_check = _json_type_check(json_type)
    if json_type == "string":
        rules = _string_rules(type_code)
    elif json_type == "integer":
        rules = _integer_rules(type_code)
    else:
        rules = None
    if rules is None:
        return type_check

    def check(value: Any) -> str | None:
        return type_check(value) or rules(value)

    return check


_ID_CHECK = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def check_resource_id(value: Any) -> str | None:
    """Resource.id is an `id` (R4 types it as a plain string in the snapshot, but the spec says id)."""
    if type(value) is not str:
        return "must be a JSON string"
    if _ID_CHECK.fullmatch(value) is None:
        return "is not a valid id (1-64 of A-Z a-z 0-9 - .)"
    return None


__all__ = ["Checker", "check_resource_id", "json_type_of", "primitive_checker"]
