"""Snapshot generation: a differential-only StructureDefinition merged onto its base's snapshot."""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any

from adapter.validation.errors import NOT_FOUND, ProfileLoadError
from adapter.validation.registry import structure_error

if TYPE_CHECKING:
    from adapter.validation.registry import ProfileRegistry

_VALUE_PREFIXES = ("fixed", "pattern")
_NOT_MERGED = {"id", "path", "sliceName", "base"}
_EXTENSION_SLICING = {"discriminator": [{"type": "value", "path": "url"}], "rules": "open"}


def element_ids(elements: list[dict]) -> list[str]:
    """Element ids, synthesised from paths and slice names where they are missing.

    A slice sets the context for the elements after it: `Patient.identifier.system` following the
    slice `Patient.identifier:INS` is `Patient.identifier:INS.system`.
    """
    out: list[str] = []
    current: dict[str, str] = {}
    for element in elements:
        path = element["path"]
        given = element.get("id")
        if isinstance(given, str) and given:
            made = given
        else:
            parent, _, name = path.rpartition(".")
            prefix = current.get(parent, parent)
            made = f"{prefix}.{name}" if parent else name
            if element.get("sliceName"):
                made += ":" + str(element["sliceName"])
        out.append(made)
        current[path] = made
        for key in [k for k in current if k.startswith(path + ".")]:
            del current[key]
    return out


def split_id(element_id: str) -> tuple[str, str, str | None]:
    """(parent id, element name, slice name) of an element id such as `A.b:s.c:t`."""
    parent, _, last = element_id.rpartition(".")
    name, _, slice_name = last.partition(":")
    return parent, name, slice_name or None


def _max_value(value: Any) -> float:
    if value in (None, "*"):
        return float("inf")
    try:
        return float(int(value))
    except (TypeError, ValueError):
        return float("inf")


class _Builder:
    """The snapshot under construction, as a list of elements with an index by id."""

    def __init__(self, sd: dict, base: dict, registry: ProfileRegistry) -> None:
        self.url = sd["url"]
        self.sd = sd
        self.registry = registry
        self.elements: list[dict] = copy.deepcopy(base["snapshot"]["element"])
        # Renamed choice ids (Observation.valueQuantity) -> the element they constrain (value[x]).
        self.aliases: dict[str, str] = {}
        for element, element_id in zip(self.elements, element_ids(self.elements), strict=True):
            element["id"] = element_id
        base_type = self.elements[0]["path"] if self.elements else sd["type"]
        if sd.get("derivation") == "specialization" and base_type != sd["type"]:
            self._rename_root(base_type, sd["type"])

    def _rename_root(self, old: str, new: str) -> None:
        for element in self.elements:
            for key in ("path", "id"):
                value = element[key]
                if value == old or value.startswith(old + ".") or value.startswith(old + ":"):
                    element[key] = new + value[len(old) :]

    def index(self, element_id: str) -> int | None:
        for position, element in enumerate(self.elements):
            if element["id"] == element_id:
                return position
        return None

    def _subtree_end(self, position: int) -> int:
        """Index just after an element and everything below it (children and slices)."""
        element_id = self.elements[position]["id"]
        end = position + 1
        while end < len(self.elements):
            other = self.elements[end]["id"]
            if not (other.startswith(element_id + ".") or other.startswith(element_id + ":")):
                break
            end += 1
        return end

    def has_children(self, element_id: str) -> bool:
        return any(e["id"].startswith(element_id + ".") for e in self.elements)

    # -- finding or making the element a differential entry targets -----------------------------------

    def unalias(self, element_id: str) -> str:
        for alias, actual in self.aliases.items():
            if element_id == alias or element_id.startswith((alias + ".", alias + ":")):
                return actual + element_id[len(alias) :]
        return element_id

    def locate(self, element_id: str, diff: dict) -> int:
        element_id = self.unalias(element_id)
        position = self.index(element_id)
        if position is not None:
            return position
        parent_id, name, slice_name = split_id(element_id)
        if not parent_id:
            raise structure_error(self.url, f"element {element_id} does not match the base type")
        if slice_name is not None:
            return self._add_slice(parent_id, name, slice_name, element_id)
        self.expand(parent_id)
        position = self.index(element_id)
        if position is not None:
            return position
        renamed = self._renamed_choice(parent_id, name)
        if renamed is not None:
            self.aliases[element_id] = self.elements[renamed]["id"]
            return renamed
        if self.sd.get("derivation") == "specialization":
            parent = self.index(parent_id)
            assert parent is not None
            end = self._subtree_end(parent)
            self.elements.insert(end, {"id": element_id, "path": diff["path"]})
            return end
        raise structure_error(self.url, f"element {element_id} is not in the base definition")

    def _renamed_choice(self, parent_id: str, name: str) -> int | None:
        # `Observation.valueQuantity` in a differential constrains value[x] to that one type.
        for position, element in enumerate(self.elements):
            candidate_id = element["id"]
            if not candidate_id.startswith(parent_id + ".") or not candidate_id.endswith("[x]"):
                continue
            stem = candidate_id[len(parent_id) + 1 : -3]
            if "." in stem or ":" in stem or not name.startswith(stem):
                continue
            suffix = name[len(stem) :]
            for type_entry in element.get("type") or ():
                code = str(type_entry.get("code", ""))
                if code[:1].upper() + code[1:] == suffix:
                    element["type"] = [type_entry]
                    return position
        return None

    def _add_slice(self, parent_id: str, name: str, slice_name: str, element_id: str) -> int:
        head, _, _ = slice_name.rpartition("/")
        sliced_id = f"{parent_id}.{name}" + (f":{head}" if head else "")
        if self.index(sliced_id) is None:
            self.locate(sliced_id, {"path": sliced_id})
        sliced_position = self.index(sliced_id)
        assert sliced_position is not None
        sliced = self.elements[sliced_position]
        if "slicing" not in sliced:
            types = [t.get("code") for t in sliced.get("type") or ()]
            if types == ["Extension"]:
                sliced["slicing"] = copy.deepcopy(_EXTENSION_SLICING)
            elif sliced["id"].endswith("[x]"):
                sliced["slicing"] = {"discriminator": [{"type": "type", "path": "$this"}], "rules": "open"}
            else:
                raise structure_error(self.url, f"slice {element_id} is on {sliced_id}, which has no slicing")
        new = {k: copy.deepcopy(v) for k, v in sliced.items() if k not in ("slicing", "id")}
        new.update({"id": element_id, "sliceName": slice_name, "min": 0})
        end = self._subtree_end(sliced_position)
        self.elements.insert(end, new)
        return end

    def expand(self, element_id: str) -> None:
        """Write out the children of an element (from its type, contentReference or sliced base)."""
        position = self.index(self.unalias(element_id))
        if position is None:
            position = self.locate(element_id, {"path": element_id})
        element_id = self.elements[position]["id"]
        if self.has_children(element_id):
            return
        element = self.elements[position]
        children = self._children_for(element)
        self.elements[position + 1 : position + 1] = children

    def _children_for(self, element: dict) -> list[dict]:
        element_id, path = element["id"], element["path"]
        if element.get("sliceName"):
            parent_id, name, _ = split_id(element_id)
            base_id = f"{parent_id}.{name}"
            if self.has_children(base_id):
                return self._rebased_subtree(base_id, element_id, path)
        reference = element.get("contentReference")
        if isinstance(reference, str):
            target = reference.partition("#")[2]
            if self.index(target) is None:
                raise structure_error(self.url, f"contentReference {reference} not found")
            return self._rebased_subtree(target, element_id, path)
        types = element.get("type") or []
        if len(types) != 1:
            raise structure_error(
                self.url, f"cannot constrain inside {element_id}: it has {len(types)} types"
            )
        type_entry = types[0]
        source = None
        for profile in type_entry.get("profile") or ():
            source = self.registry.structure(profile)
            if source is not None:
                break
        if source is None:
            source = self.registry.type_structure(str(type_entry.get("code")))
        if source is None or not (source.get("snapshot") or {}).get("element"):
            raise ProfileLoadError(
                f"StructureDefinition {self.url}: type {type_entry.get('code')} of {element_id} is not known",
                code=NOT_FOUND,
                source=self.url,
            )
        type_elements = copy.deepcopy(source["snapshot"]["element"])
        ids = element_ids(type_elements)
        root_id, root_path = ids[0], type_elements[0]["path"]
        out = []
        for child, child_id in zip(type_elements[1:], ids[1:], strict=True):
            child["id"] = element_id + child_id[len(root_id) :]
            child["path"] = path + child["path"][len(root_path) :]
            out.append(child)
        return out

    def _rebased_subtree(self, source_id: str, target_id: str, target_path: str) -> list[dict]:
        position = self.index(source_id)
        assert position is not None
        source_path = self.elements[position]["path"]
        out = []
        for element in self.elements[position + 1 : self._subtree_end(position)]:
            if not element["id"].startswith(source_id + "."):
                continue
            copied = copy.deepcopy(element)
            copied["id"] = target_id + element["id"][len(source_id) :]
            copied["path"] = target_path + element["path"][len(source_path) :]
            out.append(copied)
        return out

    # -- merging ----------------------------------------------------------------------------------------

    def merge(self, position: int, diff: dict) -> None:
        target = self.elements[position]
        if "max" in diff and not target.get("sliceName"):
            if _max_value(diff["max"]) > _max_value(target.get("max")):
                raise structure_error(
                    self.url,
                    f"{target['id']}: max {diff['max']} is wider than the base max {target.get('max')}",
                )
        if "min" in diff and not target.get("sliceName") and isinstance(diff["min"], int):
            if diff["min"] < int(target.get("min") or 0):
                raise structure_error(
                    self.url, f"{target['id']}: min {diff['min']} is below the base min {target.get('min')}"
                )
        for key, value in diff.items():
            if key in _NOT_MERGED:
                continue
            if key == "constraint":
                known = {c.get("key") for c in target.get("constraint") or ()}
                added = [copy.deepcopy(c) for c in value or () if c.get("key") not in known]
                target["constraint"] = list(target.get("constraint") or ()) + added
            elif (
                key.startswith(_VALUE_PREFIXES)
                and key[len("fixed" if key[0] == "f" else "pattern") :][:1].isupper()
            ):
                for old in [k for k in target if k.startswith(_VALUE_PREFIXES)]:
                    del target[old]
                target[key] = copy.deepcopy(value)
            else:
                target[key] = copy.deepcopy(value)

    def finish(self) -> list[dict]:
        if self.sd.get("type") == "Extension":
            url_position = self.index("Extension.url")
            if url_position is not None:
                url_element = self.elements[url_position]
                if not any(k.startswith("fixed") for k in url_element):
                    url_element["fixedUri"] = self.url
        return self.elements


def _extension_slice_id(element_id: str, diff: dict) -> str:
    """An unnamed `extension` element typed with an extension profile is a slice for that extension."""
    _, name, slice_name = split_id(element_id)
    if slice_name is not None or name not in ("extension", "modifierExtension"):
        return element_id
    types = [t for t in diff.get("type") or () if isinstance(t, dict)]
    profiles = [p for t in types if t.get("code") == "Extension" for p in t.get("profile") or ()]
    if len(types) != 1 or len(profiles) != 1 or not isinstance(profiles[0], str):
        return element_id
    tail = re.sub(r"[^A-Za-z0-9_-]", "-", profiles[0].rstrip("/").rsplit("/", 1)[-1]) or "extension"
    return f"{element_id}:{tail}"


def generate_snapshot(sd: dict, registry: ProfileRegistry) -> dict:
    """A copy of `sd` with a snapshot built from its base and differential.

    Raises ProfileLoadError when the base is unknown or the differential does not fit it.
    """
    url = sd.get("url", "?")
    differential = (sd.get("differential") or {}).get("element")
    if not isinstance(differential, list) or not differential:
        raise structure_error(url, "has neither snapshot nor differential elements")
    base_url = sd.get("baseDefinition")
    if not isinstance(base_url, str):
        elements = copy.deepcopy(differential)
        for element, element_id in zip(elements, element_ids(elements), strict=True):
            element["id"] = element_id
        return {**sd, "snapshot": {"element": elements}}
    base = registry.structure(base_url)
    if base is None:
        raise ProfileLoadError(
            f"StructureDefinition {url}: base definition {base_url} not found", code=NOT_FOUND, source=url
        )
    if not (base.get("snapshot") or {}).get("element"):
        raise structure_error(url, f"base definition {base_url} has no snapshot")
    if not all(isinstance(diff, dict) and isinstance(diff.get("path"), str) for diff in differential):
        raise structure_error(url, "differential element without a path")
    builder = _Builder(sd, base, registry)
    root_type = builder.elements[0]["path"]
    for diff, given_id in zip(differential, element_ids(differential), strict=True):
        element_id = _extension_slice_id(given_id, diff)
        if element_id.partition(".")[0].partition(":")[0] != root_type:
            raise structure_error(url, f"differential element {element_id} is not under {root_type}")
        position = builder.locate(element_id, diff)
        builder.merge(position, diff)
    return {**sd, "snapshot": {"element": builder.finish()}}


__all__ = ["element_ids", "generate_snapshot", "split_id"]
