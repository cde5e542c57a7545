"""The HL7 v2 reader: messages split at MSH, decoded in their own character set, bounded."""

from __future__ import annotations

import pytest

from adapter.mapping.errors import SourceTooLargeError
from adapter.mapping.readers import Limits
from adapter.mapping.readers.hl7path import compile_hl7_path
from adapter.mapping.readers.hl7v2 import Hl7v2Reader

MSH = "MSH|^~\\&|APP|HCL^690781810^FINESS|||20250312101500||ADT^A01^ADT_A01|{control}|P|2.5|||||FRA|{charset}"


def message(control: str, pid5: str = "DUPONT^Jean", charset: str = "UNICODE UTF-8") -> str:
    return MSH.format(control=control, charset=charset) + f"\rPID|1||123^^^HCL^PI||{pid5}||19750312|M\r"


def read(data: bytes, **limits: int):
    return Hl7v2Reader({}, Limits(**limits)).read(data)


def family(record) -> str:
    return compile_hl7_path("PID-5.1", "test")(record.data)


def test_a_file_of_several_messages_is_split_at_each_msh() -> None:
    document = read((message("A1") + message("A2") + message("A3")).encode())
    assert [r.data.control_id for r in document.records] == ["A1", "A2", "A3"]
    assert [r.location for r in document.records] == [
        "message 1 (MSH-10 A1)",
        "message 2 (MSH-10 A2)",
        "message 3 (MSH-10 A3)",
    ]


@pytest.mark.parametrize("separator", ["\r", "\n", "\r\n"])
def test_any_segment_terminator_and_mllp_framing_are_accepted(separator: str) -> None:
    text = (message("A1") + message("A2")).replace("\r", separator)
    framed = b"\x0b" + text.encode() + b"\x1c\r"
    assert [r.data.message_type for r in read(framed).records] == ["ADT^A01", "ADT^A01"]


def test_batch_header_and_trailer_segments_are_skipped() -> None:
    data = ("FHS|^~\\&\rBHS|^~\\&\r" + message("A1") + "BTS|1\rFTS|1\r").encode()
    document = read(data)
    assert len(document.records) == 1 and document.records[0].error is None


def test_each_message_is_decoded_with_its_own_msh18_character_set() -> None:
    latin = message("L1", "LEFÈVRE^Hélène", charset="8859/1").encode("latin-1")
    utf8 = message("U1", "GARÇON^Maëlys").encode("utf-8")
    document = read(latin + utf8)
    assert [family(r) for r in document.records] == ["LEFÈVRE", "GARÇON"]
    assert document.issues == []


def test_undeclared_non_utf8_bytes_fall_back_to_cp1252_with_a_warning() -> None:
    document = read(message("W1", "LEFÈVRE^Hélène", charset="").encode("cp1252"))
    assert family(document.records[0]) == "LEFÈVRE"
    assert "cp1252" in document.issues[0].message
    assert document.issues[0].source == "message 1 (line 1)"


def test_declared_utf8_that_is_not_utf8_rejects_only_that_message() -> None:
    data = message("B1", "LEFÈVRE^Hélène").encode("latin-1") + message("G1").encode()
    first, second = read(data).records
    assert "not valid utf-8" in first.error.message
    assert second.error is None


def test_an_unknown_character_set_is_reported_at_msh18() -> None:
    record = read(message("X1", charset="EBCDIC").encode()).records[0]
    assert record.error.source.endswith("MSH-18")


def test_lines_before_the_first_msh_are_ignored_with_a_warning() -> None:
    document = read(("PID|1||999\r" + message("A1")).encode())
    assert len(document.records) == 1
    assert "before the first MSH" in document.issues[0].message


def test_a_msh_without_encoding_characters_is_rejected() -> None:
    record = read(b"MSH\rPID|1\r").records[0]
    assert "encoding characters" in record.error.message


def test_a_line_that_is_not_a_segment_rejects_the_message() -> None:
    record = read((message("A1") + "this is not hl7\r").encode()).records[0]
    assert "not a segment" in record.error.message


def test_limits_refuse_a_too_large_file_or_too_many_messages() -> None:
    data = (message("A1") + message("A2")).encode()
    with pytest.raises(SourceTooLargeError, match="bytes"):
        read(data, max_bytes=100)
    with pytest.raises(SourceTooLargeError, match="2 messages"):
        read(data, max_records=1)


def test_a_too_long_message_is_rejected_alone() -> None:
    long_one = message("L1", "X" * 500)
    first, second = read((long_one + message("S1")).encode(), max_record_bytes=300).records
    assert "more than the limit of 300" in first.error.message
    assert second.error is None


def test_segment_groups_run_to_the_next_segment_of_the_same_kind() -> None:
    text = message("R1") + "ORC|RE|1\rRXA|0|1\rRXR|IV\rRXA|0|2\rRXR|SC\rNTE|1||note\r"
    msg = read(text.encode()).records[0].data
    groups = msg.groups("RXA")
    route = compile_hl7_path("RXR-1", "test")
    assert [route(g) for g in groups] == ["IV", "SC"]
    assert compile_hl7_path("NTE-3", "test")(groups[1]) == "note"
    assert compile_hl7_path("ORC-2", "test")(groups[0]) is None


def test_repeated_or_alphanumeric_delimiters_are_rejected_at_msh2() -> None:
    record = read(message("D1").replace("^~\\&", "^^\\&", 1).encode()).records[0]
    assert record.error.source.endswith("MSH-2")
    assert "distinct delimiter" in record.error.message
