"""Stepping through FHIR JSON: the values of one element of a list of nodes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def children(nodes: list, name: str, choice: Callable[[dict, str], Any] | None = None) -> list:
    """The values of element `name` in the JSON objects among `nodes`, repeats flattened, nulls dropped.

    With `choice`, a node without `name` is asked through it for a choice element ([x]) of that stem:
    search extraction and slicing discriminators tell the typed forms apart differently.
    """
    found: list = []
    for node in nodes:
        if not isinstance(node, dict):
            continue
        value = node.get(name)
        if value is None:
            if choice is None:
                continue
            value = choice(node, name)
            if value is None:
                continue
        if isinstance(value, list):
            found.extend(item for item in value if item is not None)
        else:
            found.append(value)
    return found
