"""Parsing the FHIRPath subset the validator compiles natively into nested tuples."""

from __future__ import annotations

import re
from decimal import Decimal

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<date>@[0-9][0-9T:.+\-Z]*)|(?P<num>\d+(?:\.\d+)?)"
    r"|(?P<id>[A-Za-z_][A-Za-z0-9_]*|`[^`]+`)|(?P<var>%[A-Za-z_][A-Za-z0-9_]*)|(?P<this>\$this)"
    r"|(?P<op><=|>=|!=|[=<>|&+\-(),.{}]))"
)
# Binding strength of the infix operators, loosest first (FHIRPath operator precedence, reversed).
_PRECEDENCE = {"implies": 1, "or": 2, "xor": 2, "and": 3, "in": 4, "contains": 4, "=": 5, "!=": 5, "<": 6,
               "<=": 6, ">": 6, ">=": 6, "|": 7, "is": 8, "as": 8, "+": 9, "-": 9, "&": 9}  # fmt: skip


class Unsupported(Exception):
    """The expression uses something this compiler does not handle."""


def _tokens(text: str) -> list[tuple[str, str]]:
    out, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise Unsupported(f"cannot read {text[position : position + 10]!r}")
        kind = match.lastgroup
        assert kind is not None
        out.append((kind, match.group(kind)))
        position = match.end()
    return out


class _Parser:
    """Precedence climbing over the tokens into nested tuples."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise Unsupported(f"expected {value!r}")
        self.index += 1
        return token

    def parse(self) -> tuple:
        tree = self.expression(0)
        if self.peek() is not None:
            raise Unsupported(f"unexpected {self.peek()}")
        return tree

    def expression(self, floor: int) -> tuple:
        left = self.postfix(self.term())
        while True:
            token = self.peek()
            if token is None or token[0] not in ("op", "id") or token[1] not in _PRECEDENCE:
                return left
            level = _PRECEDENCE[token[1]]
            if level <= floor:
                return left
            self.index += 1
            if token[1] in ("is", "as"):
                # `x is T` is the function form `x.is(T)`; the right side is a type name.
                kind, name = self.take()
                if kind != "id":
                    raise Unsupported("a type name was expected")
                left = ("call", left, token[1], [("nav", ("this",), name.strip("`"))])
                continue
            left = ("op", token[1], left, self.expression(level))

    def term(self) -> tuple:
        kind, value = self.take()
        if kind == "str":
            return ("lit", value[1:-1].replace("\\'", "'"), "string")
        if kind == "num":
            if "." in value:
                return ("lit", Decimal(value), "decimal")
            return ("lit", int(value), "integer")
        if kind == "date":
            return ("lit", value[1:], "dateTime" if "T" in value else "date")
        if kind == "var":
            return ("var", value[1:])
        if kind == "this":
            return ("this",)
        if kind == "op" and value == "(":
            inner = self.expression(0)
            self.take(")")
            return inner
        if kind == "op" and value == "{":
            self.take("}")
            return ("empty",)
        if kind == "id" and value in ("true", "false"):
            return ("lit", value == "true", "boolean")
        if kind == "id":
            return self.step(("this",), value.strip("`"))
        raise Unsupported(f"unexpected {value!r}")

    def step(self, base: tuple, name: str) -> tuple:
        if self.peek() == ("op", "("):
            self.take("(")
            args: list[tuple] = []
            while self.peek() != ("op", ")"):
                args.append(self.expression(0))
                if self.peek() == ("op", ","):
                    self.take(",")
            self.take(")")
            return ("call", base, name, args)
        return ("nav", base, name)

    def postfix(self, tree: tuple) -> tuple:
        while self.peek() == ("op", "."):
            self.take(".")
            kind, value = self.take()
            if kind != "id":
                raise Unsupported("expected a name after '.'")
            tree = self.step(tree, value.strip("`"))
        return tree


def parse(expression: str) -> tuple:
    """The syntax tree of an expression; Unsupported for anything outside the subset."""
    return _Parser(expression).parse()


def focus_free(tree: tuple) -> bool:
    """True when `tree` reads no $this (only literals and %variables), wherever it is evaluated."""
    kind = tree[0]
    if kind in ("lit", "empty", "var"):
        return True
    if kind == "nav":
        return focus_free(tree[1])
    if kind == "op":
        return focus_free(tree[2]) and focus_free(tree[3])
    if kind == "call":
        # Criteria see the base's items as $this; only union() and intersect() read the caller's.
        _, base, name, args = tree
        return focus_free(base) and (name not in ("union", "intersect") or all(map(focus_free, args)))
    return False


__all__ = ["Unsupported", "focus_free", "parse"]
