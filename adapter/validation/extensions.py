"""Extensions met while walking: finding their definition by url, and checking where they may be used."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from adapter.validation.contexts import allowed_here, describe, element_path
from adapter.validation.environment import Environment
from adapter.validation.errors import EXTENSION
from adapter.validation.model import ElementNode, TypeRef

if TYPE_CHECKING:
    from adapter.validation.compiler import Compiler


def extension_definition(
    compiler: Compiler, node: ElementNode, type_ref: TypeRef, value: dict, where: str, env: Environment
) -> tuple[ElementNode, TypeRef]:
    """The element tree to check an extension with: its definition's root when the url is known."""
    url = value.get("url")
    if not isinstance(url, str) or ":" not in url:
        return node, type_ref
    root = compiler.extension_root(url)
    if root is None:
        kind = "modifier extension" if node.name == "modifierExtension" else "extension"
        env.warning(EXTENSION, f"unknown {kind} {url}; its content is checked as a plain Extension", where)
        return node, type_ref
    if root.structure.type_name != "Extension":
        env.error(EXTENSION, f"{url} is not an extension definition", where)
        return node, type_ref
    check_context(compiler, url, node, where, env)
    return root, TypeRef("Extension")


def check_context(compiler: Compiler, url: str, node: ElementNode, where: str, env: Environment) -> None:
    """Report the extension at `where` when its definition's contexts do not admit that element."""
    root = compiler.extension_root(url)
    if root is None:
        return
    contexts = root.structure.sd.get("context")
    if not contexts:
        return
    path = element_path(where, env.prefix, str(env.resource.get("resourceType", "")))
    parent = None
    if node.path.endswith(".extension") and ".extension" in where.rpartition(".extension")[0]:
        parent = _parent_extension_url(where, env)
    if not allowed_here(contexts, path, parent):
        message = f"extension {url} is not allowed on {path} (its contexts: {describe(contexts)})"
        env.error(EXTENSION, message, where)


def _parent_extension_url(where: str, env: Environment) -> str | None:
    """The url of the extension holding a nested extension, read back from the instance."""
    head = where.rpartition(".extension")[0]
    node: Any = env.resource
    for step in re.findall(r"\.([A-Za-z_][\w]*)(?:\[(\d+)\])?", head[len(env.prefix) :]):
        node = node.get(step[0]) if isinstance(node, dict) else None
        if step[1] and isinstance(node, list):
            node = node[int(step[1])] if int(step[1]) < len(node) else None
    return node.get("url") if isinstance(node, dict) and isinstance(node.get("url"), str) else None


__all__ = ["check_context", "extension_definition"]
