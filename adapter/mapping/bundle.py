"""Assembling mapped resources into one FHIR transaction Bundle with conditional, idempotent entries.

`upsert` resources are written with a conditional update (PUT Type?identifier=system|value) and carry
a deterministic id, so a re-sent message updates what the first one created. `ensure` resources are a
conditional create (POST with ifNoneExist): created when missing, never overwritten, e.g. the Patient
named in a lab result, whose demographics belong to the ADT feed. `put` resources are written at their
deterministic id (PUT Type/id), for types R4 gives no identifier search (BiologicallyDerivedProduct).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from adapter.mapping.identity import identifier_query
from adapter.mapping.merge import merge_resources

Key = tuple[str, str, str]  # resource type, identifier system, identifier value


@dataclass(frozen=True)
class StoredResource:
    resource: dict
    version_id: str | None = None


class ResourceLookup(Protocol):
    """The current version of a resource by identifier, so a message can merge into it (e.g. a store)."""

    def find(self, resource_type: str, system: str, value: str) -> StoredResource | None: ...


@dataclass
class Entry:
    key: Key
    full_url: str
    method: str  # upsert | ensure | put
    merge: str
    resource: dict


def _combine(older: Entry, newer: Entry) -> Entry:
    if older.method == newer.method and older.method in ("upsert", "put"):
        return Entry(
            older.key,
            older.full_url,
            older.method,
            newer.merge,
            merge_resources(newer.merge, older.resource, newer.resource),
        )
    if older.method == "upsert" and newer.method == "upsert":
        return Entry(
            older.key,
            older.full_url,
            "upsert",
            newer.merge,
            merge_resources(newer.merge, older.resource, newer.resource),
        )
    if older.method == "upsert":
        return older
    if newer.method == "upsert":
        return newer
    # Two conditional creates of the same thing: the first stays, the second may add identifiers.
    return Entry(
        older.key,
        older.full_url,
        "ensure",
        older.merge,
        merge_resources("fields", newer.resource, older.resource),
    )


class BundleAssembler:
    """Collects the entries of accepted records; one entry per identity, in first-seen order."""

    def __init__(self) -> None:
        self._entries: dict[Key, Entry] = {}

    def add(self, entries: list[Entry]) -> None:
        for entry in entries:
            found = self._entries.get(entry.key)
            self._entries[entry.key] = entry if found is None else _combine(found, entry)

    def full_url(self, key: Key) -> str | None:
        """The fullUrl of the entry of that identity, when an accepted record already built it."""
        entry = self._entries.get(key)
        return entry.full_url if entry is not None else None

    def bundle(self, lookup: ResourceLookup | None = None) -> dict:
        """The transaction Bundle; with a lookup, merging resources are merged into their stored version."""
        out = []
        for entry in self._entries.values():
            resource_type, system, value = entry.key
            query = identifier_query(system, value)
            if entry.method == "ensure":
                resource = {k: v for k, v in entry.resource.items() if k != "id"}
                request = {"method": "POST", "url": resource_type, "ifNoneExist": query}
                out.append({"fullUrl": entry.full_url, "resource": resource, "request": request})
                continue
            resource = entry.resource
            if entry.method == "put":
                request = {"method": "PUT", "url": f"{resource_type}/{resource['id']}"}
            else:
                request = {"method": "PUT", "url": f"{resource_type}?{query}"}
            if lookup is not None and entry.merge != "replace":
                stored = lookup.find(resource_type, system, value)
                if stored is not None:
                    resource = merge_resources(entry.merge, stored.resource, resource)
                    if stored.version_id:
                        # A concurrent change between this read and the write fails (412), never lost.
                        request["ifMatch"] = f'W/"{stored.version_id}"'
            out.append({"fullUrl": entry.full_url, "resource": resource, "request": request})
        return {"resourceType": "Bundle", "type": "transaction", "entry": out}
