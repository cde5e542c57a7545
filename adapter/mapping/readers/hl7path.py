"""HL7 v2 paths (PID-3(INS).1, OBX[2]-5, PID-3[*].1) compiled to accessors, and ER7 escape sequences.

Path syntax: SEG[occurrence]-FIELD[repetition].COMPONENT.SUBCOMPONENT, all 1-based. A repetition can be
chosen by content instead: `(INS)` is the one whose component 5 (CX identifier type code) is INS, and
`(4.2=1.2.250.1.213.1.4.8)` the one whose component 4, subcomponent 2 has that value (several
conditions separated by commas must all hold). `*` as occurrence or repetition returns a list.
Omitted parts mean the first one, as in HAPI's terser: `PID-5` is the family name, PID-5.1.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from adapter.mapping.errors import MappingSpecError, ValueProblem

_PATH = re.compile(
    r"(?P<seg>[A-Z][A-Z0-9]{2})(?:\[(?P<occ>[1-9]\d*|\*)\])?"
    r"(?:-(?P<field>[1-9]\d*)(?:\[(?P<rep>[1-9]\d*|\*)\]|\((?P<filter>[^)]+)\))?"
    r"(?:\.(?P<comp>[1-9]\d*)(?:\.(?P<sub>[1-9]\d*))?)?)?"
)
_CONDITION = re.compile(r"(?:(?P<comp>[1-9]\d*)(?:\.(?P<sub>[1-9]\d*))?=)?(?P<value>[^,=]+)")
HL7_NULL = '""'


@dataclass(frozen=True)
class Codec:
    """A message's delimiters and character set, needed to undo escape sequences."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    charset: str = "utf-8"


DEFAULT_CODEC = Codec()


def _decode_hex(buffer: bytearray, codec: Codec) -> str:
    try:
        return bytes(buffer).decode(codec.charset)
    except UnicodeError:  # idna and punycode raise the base class
        # Senders that declare nothing often mean Windows-1252; the message decode made the same choice.
        return bytes(buffer).decode("cp1252", errors="replace")


def unescape(value: str, codec: Codec = DEFAULT_CODEC) -> str:
    """Undo \\F\\ \\S\\ \\T\\ \\R\\ \\E\\, \\Xhh..\\ (bytes in the message's character set), \\.br\\.

    Highlighting (\\H\\, \\N\\) is dropped. An unknown or unterminated sequence is kept as written: many
    senders do not escape a lone backslash, and losing their text would be worse than keeping it.

    Raises:
        ValueProblem: a \\X..\\ sequence that is not an even number of hex digits.
    """
    esc = codec.escape
    if esc not in value:
        return value
    out: list[str] = []
    pending = bytearray()  # consecutive \X..\ sequences form one byte string (a UTF-8 é spans two)
    i = 0
    while True:
        j = value.find(esc, i)
        if j < 0:
            break
        k = value.find(esc, j + 1)
        if k < 0:
            break
        if j > i:
            if pending:
                out.append(_decode_hex(pending, codec))
                pending.clear()
            out.append(value[i:j])
        code = value[j + 1 : k]
        if code.startswith("X") and len(code) > 1:
            digits = code[1:]
            if len(digits) % 2 or not re.fullmatch(r"[0-9A-Fa-f]+", digits):
                raise ValueProblem(f"invalid hexadecimal escape '{esc}{code}{esc}'")
            pending.extend(bytes.fromhex(digits))
            i = k + 1
            continue
        if pending:
            out.append(_decode_hex(pending, codec))
            pending.clear()
        replacement = {
            "F": codec.field,
            "S": codec.component,
            "T": codec.subcomponent,
            "R": codec.repetition,
            "E": esc,
            "H": "",
            "N": "",
            ".br": "\n",
        }.get(code)
        out.append(replacement if replacement is not None else value[j : k + 1])
        i = k + 1
    if pending:
        out.append(_decode_hex(pending, codec))
    out.append(value[i:])
    return "".join(out)


# python-hl7 containers are lists whose __getitem__ is written in Python; reading through list's own
# method gives the same item at C speed, which matters with thirty picks per message.
_item = list.__getitem__


def _at(node: Any, index: int) -> Any:
    """The index-th (1-based) part of a python-hl7 container; an unsplit string is its own first part."""
    if node is None:
        return None
    if node.__class__ is str:
        return node if index == 1 else None
    return _item(node, index - 1) if index <= len(node) else None


def _leaf(node: Any) -> str | None:
    while node is not None and node.__class__ is not str:
        node = _item(node, 0) if len(node) else None
    return node


def _clean(raw: str | None, codec: Codec) -> str | None:
    if not raw or raw == HL7_NULL:
        return None
    return unescape(raw, codec) if codec.escape in raw else raw


def _repetitions(field: Any) -> list:
    if field is None:
        return []
    if len(field) and isinstance(field[0], str) and len(field) == 1:
        return [field[0]]
    return list(field)


def _parse_filter(text: str, where: str) -> list[tuple[int, int, str]]:
    conditions = []
    for part in text.split(","):
        match = _CONDITION.fullmatch(part.strip())
        if not match:
            raise MappingSpecError(f"{where}: bad repetition filter '({text})'")
        comp = int(match["comp"]) if match["comp"] else 5  # CX.5, identifier type code
        sub = int(match["sub"]) if match["sub"] else 1
        conditions.append((comp, sub, match["value"].strip()))
    return conditions


def compile_hl7_path(text: str, where: str) -> Callable[[Any], Any]:
    """An accessor for a message or a segment group (anything with `segments(id)` and `codec`).

    Raises:
        MappingSpecError: the path does not follow the syntax above.
    """
    match = _PATH.fullmatch(text.strip())
    if not match:
        raise MappingSpecError(f"{where}: '{text}' is not an HL7 v2 path (e.g. PID-3(INS).1, OBX[2]-5.1)")
    seg = match["seg"]
    occ = match["occ"]
    if match["field"] is None:
        raise MappingSpecError(f"{where}: '{text}' names a segment, not a field (use it in for_each)")
    field_no = int(match["field"])
    rep = match["rep"]
    conditions = _parse_filter(match["filter"], where) if match["filter"] else None
    comp = int(match["comp"] or 1)
    sub = int(match["sub"] or 1)
    many = occ == "*" or rep == "*"

    def from_rep(repetition: Any, codec: Codec) -> str | None:
        return _clean(_leaf(_at(_at(repetition, comp), sub)), codec)

    def matches(repetition: Any, codec: Codec) -> bool:
        return all(_clean(_leaf(_at(_at(repetition, c), s)), codec) == v for c, s, v in conditions or ())

    def from_segment(segment: Any, codec: Codec) -> list[str | None]:
        field = _item(segment, field_no) if field_no < len(segment) else None
        if field is None:
            return []
        if conditions is not None:
            return [from_rep(r, codec) for r in _repetitions(field) if matches(r, codec)][:1]
        if rep == "*":
            return [from_rep(r, codec) for r in _repetitions(field)]
        return [from_rep(_at(field, int(rep or 1)), codec)]

    if not many and conditions is None:
        # The common case, one value at a fixed place, walked without building lists.
        occurrence, repetition = int(occ or 1), int(rep or 1)

        def access_one(source: Any) -> Any:
            segments = source.segments(seg)
            if len(segments) < occurrence:
                return None
            segment = segments[occurrence - 1]
            if field_no >= len(segment):
                return None
            node = _at(_at(_at(_item(segment, field_no), repetition), comp), sub)
            return _clean(_leaf(node), source.codec)

        return access_one

    def access(source: Any) -> Any:
        segments = source.segments(seg)
        codec = source.codec
        if occ == "*":
            chosen = segments
        else:
            index = int(occ or 1)
            chosen = segments[index - 1 : index]
        values = [v for s in chosen for v in from_segment(s, codec) if v is not None]
        if many:
            return values
        return values[0] if values else None

    return access


def check_segment_id(text: str, where: str) -> str:
    """The segment id a for_each names (its groups run from one such segment to the next)."""
    text = text.strip()
    if not re.fullmatch(r"[A-Z][A-Z0-9]{2}", text):
        raise MappingSpecError(f"{where}: for_each over HL7 v2 takes a segment id such as OBX, not '{text}'")
    return text
