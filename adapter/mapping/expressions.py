"""The expression language of mapping specs, compiled once into closures over a record's scope.

Expressions use a small, safe subset of Python syntax, parsed with `ast` and never evaluated by Python:
names of picked values, literals, `and`/`or`/`not`, comparisons, `a if c else b`, lists, indexing,
calls to the functions of `functions.py`, and `x | f(args)` as a pipe meaning `f(x, args)`.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from adapter.mapping.errors import MappingSpecError, ValueProblem
from adapter.mapping.functions import FUNCTIONS
from adapter.mapping.references import REFERENCE_FORMS
from adapter.mapping.scope import Scope
from adapter.mapping.tables import TableSet

Evaluator = Callable[["Scope"], Any]

_LITERAL_NAMES = {"null": None, "None": None, "true": True, "True": True, "false": False, "False": False}
_TABLE_FORMS = {"lookup", "code", "known"}


@dataclass
class CompileContext:
    """What compiling needs to know: the tables, the names in scope, and the refs used (checked later)."""

    tables: TableSet
    names: set[str]
    refs_used: set[str] = field(default_factory=set)
    uses: dict[str, list[str]] = field(default_factory=dict)  # name -> FHIR elements built from it
    constants: dict[str, Any] = field(default_factory=dict)
    shadowed: set[str] = field(default_factory=set)  # constants redefined by a picked value
    ref_calls: int = 0
    # (function, resource type, where) of each ref_by_identifier()/ref_by_id(), checked by the compiler
    typed_refs: list[tuple[str, str, str]] = field(default_factory=list)

    def with_names(self, extra: Iterable[str]) -> CompileContext:
        names = set(extra)
        return CompileContext(
            self.tables,
            self.names | names,
            self.refs_used,
            self.uses,
            self.constants,
            self.shadowed | names,
            self.ref_calls,
            self.typed_refs,
        )

    def foldable(self) -> set[str]:
        """Names whose value is known when compiling: spec constants no picked value redefines."""
        return set(self.constants) - self.shadowed

    def used_in(self, names: Iterable[str], target: str) -> None:
        for name in names:
            self.uses.setdefault(name, []).append(target)


@dataclass(frozen=True)
class Expr:
    text: str
    names: frozenset[str]
    evaluate: Evaluator


def _decimal_literal(node: ast.Constant, text: str) -> Decimal:
    segment = ast.get_source_segment(text, node) or repr(node.value)
    return Decimal(segment)


def _get(value: Any, key: Any) -> Any:
    try:
        if isinstance(value, dict):
            return value.get(key)
        if isinstance(value, list | str) and isinstance(key, int):
            return value[key] if -len(value) <= key < len(value) else None
    except TypeError:
        return None
    return None


def _compare(op: ast.cmpop, left: Any, right: Any) -> bool:
    if isinstance(op, ast.Eq):
        return bool(left == right)
    if isinstance(op, ast.NotEq):
        return bool(left != right)
    if isinstance(op, ast.Is):
        return left is right if right is None or left is None else left == right
    if isinstance(op, ast.IsNot):
        return left is not right if right is None or left is None else left != right
    if isinstance(op, ast.In | ast.NotIn):
        found = (
            right is not None and left in right
            if not isinstance(right, str)
            else (left is not None and str(left) in right)
        )
        return found if isinstance(op, ast.In) else not found
    if left is None or right is None:
        return False
    try:
        if isinstance(op, ast.Lt):
            return bool(left < right)
        if isinstance(op, ast.LtE):
            return bool(left <= right)
        if isinstance(op, ast.Gt):
            return bool(left > right)
        if isinstance(op, ast.GtE):
            return bool(left >= right)
    except TypeError:
        raise ValueProblem(f"cannot compare {left!r} with {right!r}") from None
    raise ValueProblem("unsupported comparison")


def _add(left: Any, right: Any) -> Any:
    if left is None or right is None:
        return None
    if isinstance(left, str) or isinstance(right, str):
        return f"{left}{right}"
    if isinstance(left, list) and isinstance(right, list):
        return left + right
    try:
        return left + right
    except TypeError:
        raise ValueProblem(f"cannot add {left!r} and {right!r}") from None


class _Compiler:
    def __init__(self, text: str, ctx: CompileContext, where: str):
        self.text = text
        self.ctx = ctx
        self.where = where
        self.names: set[str] = set()

    def fail(self, message: str) -> MappingSpecError:
        return MappingSpecError(f"{self.where}: {message} in expression '{self.text}'")

    def compile(self, node: ast.AST) -> Evaluator:  # noqa: C901 - one branch per node type reads best here
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, float):
                value = _decimal_literal(node, self.text)
            elif not isinstance(value, str | int | bool | type(None)):
                raise self.fail(f"unsupported literal {value!r}")
            return lambda scope: value
        if isinstance(node, ast.Name):
            if node.id in _LITERAL_NAMES:
                literal = _LITERAL_NAMES[node.id]
                return lambda scope: literal
            if node.id not in self.ctx.names:
                raise self.fail(f"unknown name '{node.id}'")
            self.names.add(node.id)
            name = node.id
            return lambda scope: scope.vars.get(name)
        if isinstance(node, ast.Attribute):
            base, attr = self.compile(node.value), node.attr
            return lambda scope: _get(base(scope), attr)
        if isinstance(node, ast.Subscript):
            base, index = self.compile(node.value), self.compile(node.slice)
            return lambda scope: _get(base(scope), index(scope))
        if isinstance(node, ast.BoolOp):
            parts = [self.compile(v) for v in node.values]
            if isinstance(node.op, ast.And):

                def both(scope: Scope) -> Any:
                    value = None
                    for part in parts:
                        value = part(scope)
                        if not value:
                            return value
                    return value

                return both

            def either(scope: Scope) -> Any:
                value = None
                for part in parts:
                    value = part(scope)
                    if value:
                        return value
                return value

            return either
        if isinstance(node, ast.UnaryOp):
            operand = self.compile(node.operand)
            if isinstance(node.op, ast.Not):
                return lambda scope: not operand(scope)
            if isinstance(node.op, ast.USub):
                return lambda scope: None if (v := operand(scope)) is None else -v
            raise self.fail("unsupported unary operator")
        if isinstance(node, ast.Compare):
            left = self.compile(node.left)
            pairs = [(op, self.compile(c)) for op, c in zip(node.ops, node.comparators, strict=True)]

            def compare(scope: Scope) -> bool:
                current = left(scope)
                for op, right in pairs:
                    value = right(scope)
                    if not _compare(op, current, value):
                        return False
                    current = value
                return True

            return compare
        if isinstance(node, ast.IfExp):
            test, body, orelse = self.compile(node.test), self.compile(node.body), self.compile(node.orelse)
            return lambda scope: body(scope) if test(scope) else orelse(scope)
        if isinstance(node, ast.List | ast.Tuple):
            items = [self.compile(e) for e in node.elts]
            return lambda scope: [item(scope) for item in items]
        if isinstance(node, ast.Dict):
            if any(k is None for k in node.keys):
                raise self.fail("'**' is not supported")
            keys = [self.compile(k) for k in node.keys if k is not None]
            values = [self.compile(v) for v in node.values]
            return lambda scope: {k(scope): v(scope) for k, v in zip(keys, values, strict=True)}
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.BitOr):
                return self.compile(self._pipe(node))
            if isinstance(node.op, ast.Add):
                left, right = self.compile(node.left), self.compile(node.right)
                return lambda scope: _add(left(scope), right(scope))
            raise self.fail("only '+' and '|' (pipe) are supported as operators")
        if isinstance(node, ast.Call):
            return self._call(node)
        raise self.fail(f"unsupported syntax ({type(node).__name__})")

    def _pipe(self, node: ast.BinOp) -> ast.Call:
        target = node.right
        if isinstance(target, ast.Name):
            return ast.Call(func=target, args=[node.left], keywords=[])
        if isinstance(target, ast.Call) and isinstance(target.func, ast.Name):
            args = list(target.args)
            # The piped value is the key of a table form: `sex | lookup('v2-sex')` is lookup('v2-sex', sex).
            if target.func.id in _TABLE_FORMS and args:
                args = [args[0], node.left, *args[1:]]
            else:
                args = [node.left, *args]
            return ast.Call(func=target.func, args=args, keywords=[])
        raise self.fail("the right side of '|' must be a function name or call")

    def _constant_text(self, node: ast.AST, what: str) -> str:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        raise self.fail(f"{what} must be a quoted name")

    def _call(self, node: ast.Call) -> Evaluator:
        if not isinstance(node.func, ast.Name) or node.keywords:
            raise self.fail("only plain calls of known functions are allowed")
        name = node.func.id
        if name == "ref":
            if len(node.args) != 1:
                raise self.fail("ref() takes the name of a resource of this mapping")
            target = self._constant_text(node.args[0], "ref()'s argument")
            self.ctx.refs_used.add(target)
            self.ctx.ref_calls += 1
            return lambda scope: {"reference": scope.refs[target]} if target in scope.refs else None
        if name in REFERENCE_FORMS:
            if len(node.args) != 3:
                raise self.fail(f"{name}() takes a resource type, an identifier system and a value")
            resource_type = self._constant_text(node.args[0], f"{name}()'s resource type")
            self.ctx.typed_refs.append((name, resource_type, self.where))
            self.ctx.ref_calls += 1  # resolved per record, never folded into a constant
            system, value = self.compile(node.args[1]), self.compile(node.args[2])
            return REFERENCE_FORMS[name](resource_type, system, value)
        if name in _TABLE_FORMS:
            if not 2 <= len(node.args) <= (3 if name == "lookup" else 2):
                raise self.fail(
                    f"{name}() takes a table name, a key" + (" and an attribute" if name == "lookup" else "")
                )
            table = self.ctx.tables.get(self._constant_text(node.args[0], "the table"))
            key = self.compile(node.args[1])
            if name == "known":
                return lambda scope: table.has(key(scope))
            if name == "code":
                return lambda scope: table.attribute(key(scope), "code")
            if len(node.args) == 3:
                attribute = self._constant_text(node.args[2], "the attribute")
                return lambda scope: table.attribute(key(scope), attribute)
            return lambda scope: table.coding(key(scope))
        function = FUNCTIONS.get(name)
        if function is None:
            raise self.fail(f"unknown function '{name}'")
        try:
            inspect.signature(function).bind(*node.args)
        except TypeError as exc:
            raise self.fail(f"{name}(): {exc}") from None
        args = [self.compile(a) for a in node.args]
        if len(args) == 1:
            only = args[0]
            return lambda scope: function(only(scope))
        return lambda scope: function(*(a(scope) for a in args))


def compile_expression(text: str, ctx: CompileContext, where: str) -> Expr:
    """Compile one expression; `where` names its place in the spec for error messages.

    Raises:
        MappingSpecError: syntax error, unknown name, function or table.
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise MappingSpecError(f"{where}: invalid expression '{text}': {exc.msg}") from None
    compiler = _Compiler(text.strip(), ctx, where)
    evaluate = compiler.compile(tree.body)
    return Expr(text, frozenset(compiler.names), evaluate)


def _split_template(text: str, where: str) -> list[str | tuple[str]]:
    """Literal parts and ('expr',) parts of a '${...}' template; '$${' writes a literal '${'."""
    parts: list[str | tuple[str]] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$${", i):
            literal.append("${")
            i += 3
            continue
        if not text.startswith("${", i):
            literal.append(text[i])
            i += 1
            continue
        j, quote, depth = i + 2, "", 0
        while j < len(text):
            c = text[j]
            if quote:
                quote = "" if c == quote else quote
            elif c in "'\"":
                quote = c
            elif c in "{[(":
                depth += 1
            elif c in "}])":
                if c == "}" and depth == 0:
                    break
                depth -= 1
            j += 1
        else:
            raise MappingSpecError(f"{where}: unterminated '${{' in '{text}'")
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append((text[i + 2 : j],))
        i = j + 1
    if literal:
        parts.append("".join(literal))
    return parts


def compile_template_string(
    text: str, ctx: CompileContext, where: str
) -> tuple[Evaluator | None, frozenset[str]]:
    """A string of a template: (None, names) when it is a plain constant, else an evaluator.

    A string that is exactly one '${expr}' keeps the expression's type (list, Decimal, dict...).
    Otherwise the parts are joined as text, and a part without a value makes the whole string absent,
    so 'COI-${coi}' never becomes a half-filled 'COI-'.
    """
    if "${" not in text:
        return None, frozenset()
    parts = _split_template(text, where)
    compiled = [p if isinstance(p, str) else compile_expression(p[0], ctx, where) for p in parts]
    names = frozenset().union(*(p.names for p in compiled if isinstance(p, Expr)))
    if len(compiled) == 1 and isinstance(compiled[0], Expr):
        return compiled[0].evaluate, names
    if all(isinstance(p, str) for p in compiled):
        constant = "".join(p for p in compiled if isinstance(p, str))
        return (lambda scope: constant), names
    pieces = [p if isinstance(p, str) else p.evaluate for p in compiled]

    def render(scope: Scope) -> str | None:
        out = []
        for piece in pieces:
            if isinstance(piece, str):
                out.append(piece)
                continue
            value = piece(scope)
            if value is None or value == "":
                return None
            if isinstance(value, dict | list):
                raise ValueProblem(f"cannot write a {type(value).__name__} inside text")
            out.append(str(value) if not isinstance(value, bool) else ("true" if value else "false"))
        return "".join(out)

    return render, names
