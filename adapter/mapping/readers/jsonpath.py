"""JSON Pointer (RFC 6901) and a simple JSONPath subset, compiled to accessors over parsed JSON.

JSONPath subset: `$`, `.name`, `['name']`, `[n]` (negative counts from the end), `[*]` / `.*`, and
filters `[?(@.a.b == 'x')]`, `!=`, or `[?(@.a)]` (exists). A path with `*` or a filter returns a list.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from adapter.mapping.errors import MappingSpecError

_STEP = re.compile(
    r"\.(?P<name>[A-Za-z_$][\w$-]*)|\.\*|\[\*\]|\[(?P<index>-?\d+)\]"
    r"|\[(?P<quote>['\"])(?P<key>.*?)(?P=quote)\]"
    r"|\[\?\(@(?P<fpath>(?:\.[A-Za-z_$][\w$-]*)+)\s*(?:(?P<op>==|!=)\s*(?P<fval>'[^']*'|\"[^\"]*\"|-?\d+(?:\.\d+)?|true|false|null))?\s*\)\]"
)
_LITERALS = {"true": True, "false": False, "null": None}


def compile_pointer(text: str, where: str) -> Callable[[Any], Any]:
    """An RFC 6901 JSON Pointer accessor; a missing member or index gives None."""
    if text and not text.startswith("/"):
        raise MappingSpecError(f"{where}: '{text}' is not a JSON Pointer (it must start with '/')")
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in text.split("/")[1:]] if text else []

    def access(node: Any) -> Any:
        for token in tokens:
            if isinstance(node, dict):
                node = node.get(token)
            elif isinstance(node, list) and token.isdigit() and (token == "0" or not token.startswith("0")):
                index = int(token)
                node = node[index] if index < len(node) else None
            else:
                return None
            if node is None:
                return None
        return node

    return access


def _literal(text: str) -> Any:
    if text[0] in "'\"":
        return text[1:-1]
    if text in _LITERALS:
        return _LITERALS[text]
    return float(text) if "." in text else int(text)


def _member(node: Any, names: list[str]) -> Any:
    for name in names:
        if not isinstance(node, dict):
            return None
        node = node.get(name)
    return node


def compile_jsonpath(text: str, where: str) -> tuple[Callable[[Any], Any], bool]:
    """A JSONPath accessor and whether it returns a list (wildcard or filter)."""
    if not text.startswith("$"):
        raise MappingSpecError(f"{where}: '{text}' is not a JSONPath (it must start with '$')")
    steps: list[tuple[str, Any]] = []
    position = 1
    many = False
    while position < len(text):
        match = _STEP.match(text, position)
        if not match:
            raise MappingSpecError(f"{where}: cannot read JSONPath '{text}' at '{text[position:]}'")
        position = match.end()
        token = match.group(0)
        if match["name"] is not None:
            steps.append(("key", match["name"]))
        elif match["key"] is not None:
            steps.append(("key", match["key"]))
        elif match["index"] is not None:
            steps.append(("index", int(match["index"])))
        elif match["fpath"] is not None:
            names = match["fpath"].split(".")[1:]
            op = match["op"]
            expected = _literal(match["fval"]) if op else None
            steps.append(("filter", (names, op, expected)))
            many = True
        elif token in (".*", "[*]"):
            steps.append(("all", None))
            many = True

    def access(root: Any) -> Any:
        nodes = [root]
        for kind, arg in steps:
            found = []
            for node in nodes:
                if kind == "key":
                    if isinstance(node, dict) and arg in node:
                        found.append(node[arg])
                elif kind == "index":
                    if isinstance(node, list) and -len(node) <= arg < len(node):
                        found.append(node[arg])
                elif kind == "all":
                    found.extend(
                        node if isinstance(node, list) else node.values() if isinstance(node, dict) else []
                    )
                else:
                    names, op, expected = arg
                    candidates = node if isinstance(node, list) else [node]
                    for item in candidates:
                        value = _member(item, names)
                        if (
                            (op is None and value is not None)
                            or (op == "==" and value == expected)
                            or (op == "!=" and value != expected)
                        ):
                            found.append(item)
            nodes = [n for n in found if n is not None]
            if not nodes:
                break
        if many:
            return nodes
        return nodes[0] if nodes else None

    return access, many
