"""HL7 v2.x ER7 reader: a file of one or more messages (split at each MSH) parsed with python-hl7.

Each message is decoded in the character set its MSH-18 declares (UTF-8 when it declares none, with a
reported Windows-1252 fallback), so one badly encoded message does not stop the others.
"""

from __future__ import annotations

import re
from typing import Any

import hl7
from hl7.exceptions import ParseException

from adapter.mapping.errors import MappingIssue, MappingSpecError, ValueProblem
from adapter.mapping.readers.base import Accessor, ItemsAccessor, Limits, Record, SourceDocument, text_codec
from adapter.mapping.readers.hl7path import Codec, check_segment_id, compile_hl7_path, unescape

# MSH-18 values seen from French senders, to Python codecs; anything else is refused per message.
_CHARSETS = {
    "": None,
    "ASCII": None,
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "UTF8": "utf-8",
    "8859/1": "latin-1",
    "8859/15": "iso8859-15",
    "CP1252": "cp1252",
    "WINDOWS-1252": "cp1252",
}
_SEGMENT_ID = re.compile(rb"[A-Z][A-Z0-9]{2}")
_FRAMING = bytes.maketrans(b"\x0b\x1c", b"\n\n")  # MLLP start/end blocks become line breaks
_BATCH = (b"FHS", b"BHS", b"BTS", b"FTS")


class Hl7Message:
    """A parsed message: segments by id, the codec for escapes, and segment groups for for_each."""

    __slots__ = ("codec", "_order", "_by_id", "message_type", "control_id")

    def __init__(self, parsed: hl7.Message, codec: Codec):
        self.codec = codec
        self._order: list[tuple[str, Any]] = [(str(s[0][0]) if len(s) else "", s) for s in parsed]
        by_id: dict[str, list] = {}
        for seg_id, segment in self._order:
            by_id.setdefault(seg_id, []).append(segment)
        self._by_id = by_id
        msh = by_id["MSH"][0]
        self.message_type = _message_type(msh, codec)
        self.control_id = _field(msh, 10, codec)

    def segments(self, seg_id: str) -> list:
        return self._by_id.get(seg_id, [])

    def groups(self, seg_id: str) -> list[Hl7Group]:
        """Each `seg_id` segment with the segments after it, up to the next `seg_id` (e.g. OBX + NTE)."""
        runs: list[list[tuple[str, Any]]] = []
        for item in self._order:
            if item[0] == seg_id:
                runs.append([item])
            elif runs:
                runs[-1].append(item)
        return [Hl7Group(run, self.codec) for run in runs]


class Hl7Group:
    __slots__ = ("codec", "_by_id")

    def __init__(self, segments: list[tuple[str, Any]], codec: Codec):
        self.codec = codec
        self._by_id: dict[str, list] = {}
        for seg_id, segment in segments:
            self._by_id.setdefault(seg_id, []).append(segment)

    def segments(self, seg_id: str) -> list:
        return self._by_id.get(seg_id, [])


def _field(segment: Any, number: int, codec: Codec) -> str | None:
    if number >= len(segment):
        return None
    node = segment[number]
    while node is not None and not isinstance(node, str):
        node = node[0] if len(node) else None
    return unescape(node, codec) if node else None


def _component(segment: Any, number: int, comp: int) -> str:
    if number >= len(segment):
        return ""
    node = segment[number]
    if not len(node) or isinstance(node[0], str):
        return str(node[0]) if comp == 1 and len(node) else ""
    repetition = node[0]
    if comp > len(repetition):
        return ""
    part = repetition[comp - 1]
    return part if isinstance(part, str) else str(part[0]) if len(part) else ""


def _message_type(msh: Any, codec: Codec) -> str:
    code, event = _component(msh, 9, 1), _component(msh, 9, 2)
    return f"{code}^{event}" if event else code


def _split_messages(data: bytes) -> tuple[list[tuple[int, list[bytes]]], list[int]]:
    """Messages as (first line number, segment lines); and line numbers of segments before any MSH."""
    messages: list[tuple[int, list[bytes]]] = []
    orphans: list[int] = []
    text = data.translate(_FRAMING).replace(b"\r\n", b"\r").replace(b"\n", b"\r")
    for number, line in enumerate(text.split(b"\r"), start=1):
        line = line.strip(b" \t")
        if not line or line[:3] in _BATCH:
            continue
        if line.startswith(b"MSH"):
            messages.append((number, [line]))
        elif messages:
            messages[-1][1].append(line)
        else:
            orphans.append(number)
    return messages, orphans


def _charset(msh: bytes) -> str | None:
    separator = msh[3:4]
    if not separator:
        return ""
    fields = msh.split(separator)
    declared = fields[17].decode("ascii", errors="replace").strip() if len(fields) > 17 else ""
    return declared.split(msh[4:5].decode("ascii", "replace"))[0].upper() if declared else ""


class Hl7v2Reader:
    """Reads ER7 files; paths are HL7 v2 paths (see hl7path), for_each names a segment id."""

    format = "hl7v2"
    media_types = ("x-application/hl7-v2+er7", "application/hl7-v2", "text/plain", "application/edi-hl7")

    def __init__(self, options: dict, limits: Limits):
        self.limits = limits
        self.message_types = tuple(options.get("message_types") or ())

    def read(self, data: bytes, charset: str | None = None) -> SourceDocument:
        self.limits.check_size(data)
        if charset:
            charset = text_codec(charset)
        messages, orphans = _split_messages(data)
        self.limits.check_count(len(messages), "messages")
        document = SourceDocument([])
        if orphans:
            document.issues.append(
                MappingIssue(
                    "warning",
                    f"{len(orphans)} line(s) before the first MSH segment were ignored",
                    source=f"line {orphans[0]}",
                )
            )
        for index, (line, segments) in enumerate(messages, start=1):
            document.records.append(self._record(index, line, segments, charset, document))
        return document

    def _record(
        self, index: int, line: int, segments: list[bytes], forced: str | None, document: SourceDocument
    ) -> Record:
        location = f"message {index} (line {line})"
        size = sum(len(s) + 1 for s in segments)
        if size > self.limits.max_record_bytes:
            return Record(
                index,
                location,
                error=MappingIssue(
                    "error",
                    f"message is {size} bytes, more than the limit of {self.limits.max_record_bytes}",
                    source=location,
                ),
            )
        raw = b"\r".join(segments)
        declared = _charset(segments[0])
        if declared not in _CHARSETS:
            return Record(
                index,
                location,
                error=MappingIssue(
                    "error", f"unsupported character set '{declared}' in MSH-18", source=f"{location}, MSH-18"
                ),
            )
        charset = forced or _CHARSETS[declared] or "utf-8"
        try:
            text = raw.decode(charset)
        # UnicodeError, not only UnicodeDecodeError: idna and punycode raise the base class.
        except UnicodeError as exc:
            if forced or _CHARSETS[declared]:
                return Record(
                    index,
                    location,
                    error=MappingIssue(
                        "error",
                        f"bytes are not valid {charset} (offset {getattr(exc, 'start', 0)}) as "
                        + ("the Content-Type declares" if forced else "MSH-18 declares"),
                        source=location,
                    ),
                )
            charset = "cp1252"
            text = raw.decode(charset, errors="replace")
            document.issues.append(
                MappingIssue(
                    "warning",
                    "not valid UTF-8 and no MSH-18 character set: decoded as Windows-1252 (cp1252)",
                    source=location,
                )
            )
        if len(text) < 8 or text[3] in "\r\n" or text[3].isalnum():
            return Record(
                index,
                location,
                error=MappingIssue(
                    "error",
                    "MSH segment has no field separator and encoding characters",
                    source=f"{location}, MSH",
                ),
            )
        end = text.find(text[3], 4)
        declared_encoding = text[4:end] if end > 0 else text[4:8]
        delimiters = text[3] + declared_encoding
        if (
            not 3 <= len(declared_encoding) <= 4
            or len(set(delimiters)) != len(delimiters)
            or any(c.isalnum() or c in " \r\n" for c in delimiters)
        ):
            return Record(
                index,
                location,
                error=MappingIssue(
                    "error",
                    f"MSH-1/MSH-2 must be distinct delimiter characters, not {delimiters!r}",
                    source=f"{location}, MSH-2",
                ),
            )
        encoding = declared_encoding.ljust(4, "&")
        codec = Codec(
            field=text[3],
            component=encoding[0],
            repetition=encoding[1],
            escape=encoding[2],
            subcomponent=encoding[3],
            charset=charset,
        )
        header = text.split("\r", 1)[0].split(codec.field)
        try:
            control = unescape(header[9], codec) if len(header) > 9 and header[9] else None
        except ValueProblem as problem:
            # The message control id names the message in every finding: without it, only this one.
            return Record(
                index, location, error=MappingIssue("error", problem.message, source=f"{location}, MSH-10")
            )
        if control:
            location = f"message {index} (MSH-10 {control})"
        bad = next((s for s in segments if not _SEGMENT_ID.match(s[:3])), None)
        if bad is not None:
            problem = f"cannot parse the message: '{bad[:20].decode('ascii', 'replace')}' is not a segment"
            return Record(index, location, error=MappingIssue("error", problem, source=location))

        def parse(record: Record) -> None:
            # Parsed only when mapped, and dropped after: python-hl7 objects are many and large.
            try:
                record.data = Hl7Message(hl7.parse(text), codec)
            # python-hl7 signals some malformed input with assert; a bad message must never stop the file.
            except (AssertionError, ParseException, IndexError, KeyError, TypeError, ValueError) as exc:
                record.error = MappingIssue("error", f"cannot parse the message: {exc}", source=location)
            except ValueProblem as problem:
                record.error = MappingIssue("error", problem.message, source=location)

        return Record(index, location, loader=parse)

    def accepts(self, record: Record) -> bool:
        return not self.message_types or record.data.message_type in self.message_types

    def path(self, text: str, where: str, many: bool = False) -> Accessor:
        return compile_hl7_path(text, where)

    def items(self, text: str, where: str) -> ItemsAccessor:
        seg_id = check_segment_id(text, where)

        def groups(source: Any, location: str) -> list[tuple[str, Any]]:
            if not isinstance(source, Hl7Message):
                raise MappingSpecError(f"{where}: a for_each over {seg_id} must be at the message level")
            return [
                (f"{location}, {seg_id} #{n}", group)
                for n, group in enumerate(source.groups(seg_id), start=1)
            ]

        return groups

    def describe(self, text: str) -> str:
        return text.strip()
