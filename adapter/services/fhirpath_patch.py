"""The FHIR patch interaction with FHIRPath Patch documents (a Parameters resource of operations).

Paths are the part of FHIRPath a patch needs to point at elements: `Type.element.element`, indexers
(`identifier[0]`), `first()`, `last()`, and `where(...)` over equalities of relative paths with
literals joined by `and` (`identifier.where(system = 'urn:oid:1.2.250.1.213.1.4.8')`). Anything else is
refused with 400 rather than guessed at. Whether a new element repeats (a list) comes from the R4 base
definitions.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from adapter.definitions import structure_definition_for_type
from adapter.errors import InvalidRequestError, UnprocessableResourceError

_OPERATIONS = {"add", "insert", "delete", "replace", "move"}
_STEP = re.compile(r"\.?(?P<name>[A-Za-z][A-Za-z0-9]*)(?P<index>\[\d+\])?")
_WHERE = re.compile(r"\.where\((?P<criteria>[^()]*)\)")
_FUNCTION = re.compile(r"\.(?P<name>first|last)\(\)")
_CRITERION = re.compile(
    r"^\s*(?P<path>[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*)*)\s*=\s*"
    r"(?P<value>'(?:[^'\\]|\\.)*'|-?\d+(?:\.\d+)?|true|false)\s*$"
)


@dataclass
class _Slot:
    """Where an element lives: `holder[key]`, the element definition path (no indices), and for an item
    of a list the dict and key holding that list."""

    holder: Any
    key: Any
    element: str
    owner: dict | None = None
    owner_key: str | None = None

    @property
    def value(self) -> Any:
        return self.holder[self.key]


def is_fhirpath_patch(document: Any) -> bool:
    return isinstance(document, dict) and document.get("resourceType") == "Parameters"


def apply_fhirpath_patch(resource: dict, document: dict, res_type: str, res_id: str) -> dict:
    """`resource` with the operations of the Parameters `document` applied in order (a new dict).

    Raises:
        InvalidRequestError: the document is not a FHIRPath Patch, or a path uses FHIRPath this server
            does not evaluate in patches (400).
        UnprocessableResourceError: an operation does not find what it needs (422); nothing changes.
    """
    parameters = document.get("parameter")
    operations = [p for p in parameters if isinstance(p, dict)] if isinstance(parameters, list) else []
    if not operations or any(p.get("name") != "operation" for p in operations):
        raise InvalidRequestError("a FHIRPath Patch is a Parameters resource of 'operation' parameters")
    current = copy.deepcopy(resource)
    for number, operation in enumerate(operations, start=1):
        _apply(current, res_type, _parts(operation, number), number)
    for element, expected in (("resourceType", res_type), ("id", res_id)):
        if current.get(element) != expected:
            raise UnprocessableResourceError(f"a patch may not change {element}", expression=element)
    return current


def _parts(operation: dict, number: int) -> dict[str, Any]:
    parts: dict[str, Any] = {}
    given = operation.get("part")
    if given is not None and not isinstance(given, list):
        raise InvalidRequestError(f"FHIRPath Patch operation {number}: part must be a list of parts")
    for part in given or []:
        name = part.get("name") if isinstance(part, dict) else None
        if name == "value":
            parts["value"] = _value(part, number)
        elif name in ("type", "path", "name", "index", "source", "destination"):
            found = [v for k, v in part.items() if k.startswith("value")]
            if len(found) != 1:
                raise InvalidRequestError(f"FHIRPath Patch operation {number}: {name} needs one value")
            parts[name] = found[0]
    # A JSON array or object here is unhashable: test its type before looking it up.
    if not isinstance(parts.get("type"), str) or parts["type"] not in _OPERATIONS:
        raise InvalidRequestError(
            f"FHIRPath Patch operation {number}: type must be one of {', '.join(sorted(_OPERATIONS))}"
        )
    if not isinstance(parts.get("path"), str):
        raise InvalidRequestError(f"FHIRPath Patch operation {number}: path is required")
    return parts


def _value(part: dict, number: int) -> Any:
    """A `value` part: value[x], or nested parts for a complex value without a data type of its own."""
    found = [v for k, v in part.items() if k.startswith("value")]
    if len(found) == 1:
        return copy.deepcopy(found[0])
    if not found and isinstance(part.get("part"), list):
        out: dict[str, Any] = {}
        for child in part["part"]:
            name = child.get("name") if isinstance(child, dict) else None
            if not isinstance(name, str):
                raise InvalidRequestError(f"FHIRPath Patch operation {number}: a value part has no name")
            out[name] = _value(child, number)
        return out
    raise InvalidRequestError(f"FHIRPath Patch operation {number}: value needs one value[x] or parts")


def _apply(resource: dict, res_type: str, op: dict[str, Any], number: int) -> None:
    kind, path = op["type"], op["path"]
    where = f"FHIRPath Patch operation {number} ({kind} {path})"
    slots = _evaluate(resource, res_type, path, where)
    if kind in ("delete", "replace") and any(s.key == "" for s in slots):
        # The resource itself: a patch changes its elements; deleting or replacing the whole is what
        # DELETE and PUT are for (applied to the evaluation's wrapper, it would silently do nothing).
        raise UnprocessableResourceError(f"{where}: a patch cannot {kind} the resource itself")
    if kind == "delete":
        if len(slots) > 1:
            raise UnprocessableResourceError(f"{where}: the path matches {len(slots)} elements, not one")
        if slots:
            _remove(slots[0])
        return
    if kind == "replace":
        _single(slots, where)
        _require(op, "value", where)
        slots[0].holder[slots[0].key] = op["value"]
        return
    if kind == "add":
        target = _single(slots, where)
        _require(op, "name", where)
        _require(op, "value", where)
        if not isinstance(target.value, dict):
            raise UnprocessableResourceError(f"{where}: the path does not point at an element with children")
        name = op["name"]
        existing = target.value.get(name)
        if isinstance(existing, list):
            existing.append(op["value"])
        elif existing is not None:
            raise UnprocessableResourceError(f"{where}: {name} is already there; use replace")
        else:
            repeats = _repeats(f"{target.element}.{name}")
            target.value[name] = [op["value"]] if repeats else op["value"]
        return
    # insert and move work on the list a repeating element is
    items = _list_of(slots, resource, res_type, path, where)
    if kind == "insert":
        _require(op, "value", where)
        index = _index(op, "index", where, len(items) + 1)
        items.insert(index, op["value"])
    else:
        source = _index(op, "source", where, len(items))
        destination = _index(op, "destination", where, len(items))
        items.insert(destination, items.pop(source))


def _require(op: dict[str, Any], name: str, where: str) -> None:
    if name not in op:
        raise InvalidRequestError(f"{where}: {name} is required")


def _single(slots: list[_Slot], where: str) -> _Slot:
    if len(slots) != 1:
        raise UnprocessableResourceError(f"{where}: the path matches {len(slots)} elements, not one")
    return slots[0]


def _index(op: dict[str, Any], name: str, where: str, size: int) -> int:
    value = op.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < size:
        raise UnprocessableResourceError(f"{where}: {name} must be an index from 0 to {size - 1}")
    return value


def _list_of(slots: list[_Slot], resource: dict, res_type: str, path: str, where: str) -> list:
    """The list the items at `path` belong to (created empty under its parent when it is absent)."""
    owners = {(id(s.owner), s.owner_key) for s in slots}
    if slots and len(owners) == 1 and slots[0].owner is not None and len(slots) == len(slots[0].holder):
        return slots[0].holder
    if slots:
        raise UnprocessableResourceError(
            f"{where}: the path must point at all items of one repeating element"
        )
    parent_path, _, name = path.rpartition(".")
    if not parent_path or not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", name):
        raise UnprocessableResourceError(f"{where}: the path matches nothing")
    parent = _single(_evaluate(resource, res_type, parent_path, where), where)
    if not isinstance(parent.value, dict) or not _repeats(f"{parent.element}.{name}"):
        raise UnprocessableResourceError(f"{where}: {name} is not a repeating element here")
    return parent.value.setdefault(name, [])


def _remove(slot: _Slot) -> None:
    del slot.holder[slot.key]
    if isinstance(slot.holder, list) and not slot.holder and slot.owner is not None:
        del slot.owner[slot.owner_key]  # FHIR JSON has no empty lists


def _evaluate(resource: dict, res_type: str, path: str, where: str) -> list[_Slot]:
    text = path.strip()
    if not text.startswith(res_type) or (len(text) > len(res_type) and text[len(res_type)] not in ".["):
        raise InvalidRequestError(f"{where}: the path must start with {res_type}")
    slots = [_Slot({"": resource}, "", res_type)]
    position = len(res_type)
    while position < len(text):
        if match := _WHERE.match(text, position):
            criteria = _criteria(match["criteria"], where)
            slots = [s for s in slots if all(_matches(s.value, p, v) for p, v in criteria)]
        elif match := _FUNCTION.match(text, position):
            slots = (slots[:1] if match["name"] == "first" else slots[-1:]) if slots else []
        elif match := _STEP.match(text, position):
            if match.start() == position and not text.startswith(".", position) and position:
                raise InvalidRequestError(f"{where}: cannot read the path at {text[position:]!r}")
            slots = [child for s in slots for child in _children(s, match["name"])]
            if match["index"]:
                n = int(match["index"][1:-1])
                slots = slots[n : n + 1]
        else:
            raise InvalidRequestError(
                f"{where}: this server evaluates element names, [n], first(), last() and where(a = 'b') "
                f"in patch paths; cannot read {text[position:]!r}"
            )
        position = match.end()
    return slots


def _children(slot: _Slot, name: str) -> list[_Slot]:
    node = slot.value
    if not isinstance(node, dict):
        return []
    if name not in node:
        # A choice element named by its stem (`value` for valueQuantity), as FHIRPath reads it.
        typed = [k for k in node if k.startswith(name) and len(k) > len(name) and k[len(name)].isupper()]
        if len(typed) != 1:
            return []
        name = typed[0]
    element = f"{slot.element}.{name}"
    value = node[name]
    if isinstance(value, list):
        return [_Slot(value, i, element, node, name) for i in range(len(value))]
    return [_Slot(node, name, element)]


def _criteria(text: str, where: str) -> list[tuple[list[str], Any]]:
    out = []
    for term in re.split(r"\s+and\s+", text):
        match = _CRITERION.match(term)
        if not match:
            raise InvalidRequestError(f"{where}: where() takes equalities such as system = 'x' joined by and")
        raw = match["value"]
        value: Any
        if raw.startswith("'"):
            value = re.sub(r"\\(.)", r"\1", raw[1:-1])
        elif raw in ("true", "false"):
            value = raw == "true"
        else:
            value = float(raw) if "." in raw else int(raw)
        out.append((match["path"].split("."), value))
    return out


def _matches(node: Any, steps: list[str], value: Any) -> bool:
    nodes = [node]
    for step in steps:
        nodes = [
            item
            for n in nodes
            if isinstance(n, dict) and step in n
            for item in (n[step] if isinstance(n[step], list) else [n[step]])
        ]
    return any(n == value for n in nodes)


def _repeats(element: str) -> bool:
    """Whether the element at this definition path (`Patient.identifier`, `Task.input.value`...) may
    repeat, walking into data types as the path goes through them."""
    steps = element.split(".")
    definition = structure_definition_for_type(steps[0])
    current = steps[0]
    for position, step in enumerate(steps[1:], start=1):
        found = _element(definition, f"{current}.{step}")
        if found is None:
            return False
        if position == len(steps) - 1:
            return found.get("max") == "*" or (found.get("max", "1").isdigit() and int(found["max"]) > 1)
        types = [t.get("code") for t in found.get("type", [])]
        if types in (["BackboneElement"], ["Element"]) or not types:
            current = f"{current}.{step}"
        else:
            definition = structure_definition_for_type(types[0])
            current = definition["type"]
    return False


def _element(definition: dict, path: str) -> dict | None:
    for element in definition.get("snapshot", {}).get("element", []):
        if element.get("path") == path:
            return element
    return None
