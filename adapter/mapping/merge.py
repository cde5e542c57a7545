"""How two versions of the same resource combine: in one Bundle, and with the stored one when given.

`replace`: the newer wins. `fields`: top-level elements of the newer replace the older's, others stay,
identifiers are united. `careplan-steps`: as `fields`, and the pathway's activities merge step by step
(see mappings/README.md, "The pathway CarePlan").
"""

from __future__ import annotations

from typing import Any

from adapter.search.dates import date_range

PATHWAY_STEP = "https://cart-adapter.example.org/fhir/CodeSystem/pathway-step"
STRATEGIES = ("replace", "fields", "careplan-steps")

_RANK = {"not-started": 0, "scheduled": 1, "in-progress": 2, "on-hold": 2, "completed": 3}
_SIDE_EXITS = {"cancelled", "stopped", "entered-in-error"}
_NO_INFORMATION = {"kind", "code", "status", "description"}


def _identifiers(older: list | None, newer: list | None) -> list | None:
    if not older:
        return newer
    out = list(newer or [])
    seen = {(i.get("system"), i.get("value")) for i in out if isinstance(i, dict)}
    for identifier in older:
        if isinstance(identifier, dict) and (identifier.get("system"), identifier.get("value")) not in seen:
            out.append(identifier)
    return out


def _fields(older: dict, newer: dict) -> dict:
    merged = {**older, **newer}
    if "id" in older:
        merged["id"] = older["id"]
    identifiers = _identifiers(older.get("identifier"), newer.get("identifier"))
    if identifiers:
        merged["identifier"] = identifiers
    return merged


def _instant(value: Any, upper: bool) -> int | None:
    span = date_range(value) if isinstance(value, str) else None
    return None if span is None else span[1 if upper else 0]


def union_period(older: dict | None, newer: dict | None) -> dict | None:
    """The smallest period covering both (earliest start, latest end)."""
    if not older or not newer:
        return newer or older
    out = {}
    for key, upper in (("start", False), ("end", True)):
        a, b = older.get(key), newer.get(key)
        if a is None or b is None:
            if a or b:
                out[key] = a or b
            continue
        ia, ib = _instant(a, upper), _instant(b, upper)
        if ia is None or ib is None:
            out[key] = b
        else:
            out[key] = (b if ib > ia else a) if upper else (b if ib < ia else a)
    return out or None


def step_of(activity: dict) -> str | None:
    for coding in (activity.get("detail", {}).get("code", {}) or {}).get("coding", []) or []:
        if coding.get("system") == PATHWAY_STEP:
            return coding.get("code")
    return None


def _informative(detail: dict) -> bool:
    return detail.get("status") != "not-started" or bool(set(detail) - _NO_INFORMATION)


def merge_activity(older: dict, newer: dict) -> dict:
    """One pathway step seen twice: information wins over none, and a step never moves backwards."""
    old, new = older.get("detail", {}), newer.get("detail", {})
    if not _informative(new):
        return older
    if not _informative(old):
        return newer
    old_status, new_status = old.get("status"), new.get("status")
    if new_status in _SIDE_EXITS:
        detail = {**old, **new}
    elif old_status in _SIDE_EXITS and _RANK.get(new_status, 0) < 2:
        # A late plan does not revive a cancelled step; only an actual event (in progress, done) does.
        detail = {**new, **old}
    elif _RANK.get(new_status, 0) < _RANK.get(old_status, 0):
        # Out of order (e.g. the appointment message after the administration): keep the progress made.
        detail = {**new, **old}
    elif _RANK.get(new_status, 0) >= 2 and _RANK.get(old_status, 0) >= 2:
        # Two accounts of what happened (day 1 and day 3 of lymphodepletion): the step spans both.
        detail = {**old, **new}
        period = union_period(old.get("scheduledPeriod"), new.get("scheduledPeriod"))
        if period:
            detail["scheduledPeriod"] = period
    else:
        detail = {**old, **new}
    return {**older, **newer, "detail": detail}


def _activities(older: list | None, newer: list | None) -> list | None:
    if not older:
        return newer
    if not newer:
        return older
    out = list(older)
    index = {step_of(a): i for i, a in enumerate(out) if step_of(a)}
    for activity in newer:
        step = step_of(activity)
        if step in index:
            out[index[step]] = merge_activity(out[index[step]], activity)
        elif activity not in out:
            out.append(activity)
    return out


def _careplan(older: dict, newer: dict) -> dict:
    merged = _fields(older, newer)
    if "created" in older:
        merged["created"] = older["created"]
    period = union_period(older.get("period"), newer.get("period"))
    if period:
        merged["period"] = period
    activities = _activities(older.get("activity"), newer.get("activity"))
    if activities:
        merged["activity"] = activities
    return merged


def merge_resources(strategy: str, older: dict, newer: dict) -> dict:
    """Combine two versions of one resource; `older` may be the stored one (its id is kept)."""
    if strategy == "replace":
        if "id" in older:
            return {**newer, "id": older["id"]}
        return newer
    if strategy == "fields":
        return _fields(older, newer)
    if strategy == "careplan-steps":
        return _careplan(older, newer)
    raise ValueError(f"unknown merge strategy {strategy!r}")
