"""The CSV reader: ';', UTF-8 with optional BOM or reported cp1252, rows checked against the schema."""

from __future__ import annotations

import pytest

from adapter.mapping.errors import SourceFormatError, SourceTooLargeError
from adapter.mapping.readers import Limits
from adapter.mapping.readers.csvfile import CsvReader, column_letter
from tests.unit.mapping.conftest import MAPPINGS

HEADER = (
    "INS;Nom de naissance;Prénom;Date de naissance;Sexe;COI;Produit;FINESS site;"
    "Date perfusion;Lymphocytes (G/L)"
)
GOOD = "275036938312363;LEFÈVRE;Hélène;12/03/1975;F;COI-FR-69-000042;YESCARTA;690784152;10/05/2025 10:02;0,85"


def read(text: str, *, encoding: str = "utf-8", bom: bool = False, charset: str | None = None, **limits: int):
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding)
    reader = CsvReader({"schema": "schemas/tracking-sheet.schema.json"}, Limits(**limits), MAPPINGS)
    return reader.read(data, charset)


def test_rows_become_dicts_of_non_empty_cells_with_their_line() -> None:
    document = read(f"{HEADER}\r\n{GOOD}\r\n", bom=True)
    (record,) = document.records
    assert record.location == "line 2"
    assert record.data["Nom de naissance"] == "LEFÈVRE"
    assert record.data["Lymphocytes (G/L)"] == "0,85"
    assert document.issues == []


def test_cp1252_is_decoded_and_reported() -> None:
    document = read(f"{HEADER}\r\n{GOOD}\r\n", encoding="cp1252")
    assert document.records[0].data["Prénom"] == "Hélène"
    assert "Windows-1252" in document.issues[0].message


def test_a_charset_from_the_content_type_is_used_as_given() -> None:
    document = read(f"{HEADER}\r\n{GOOD}\r\n", encoding="cp1252", charset="windows-1252")
    assert document.records[0].data["Prénom"] == "Hélène"
    assert document.issues == []
    with pytest.raises(SourceFormatError, match="utf-8"):
        read(f"{HEADER}\r\n{GOOD}\r\n", encoding="cp1252", charset="utf-8")


def test_a_header_without_the_required_columns_refuses_the_file() -> None:
    with pytest.raises(SourceFormatError, match="separator"):
        read(HEADER.replace(";", ",") + "\n")


def test_an_empty_source_is_refused() -> None:
    with pytest.raises(SourceFormatError, match="empty"):
        read("\r\n;;;\r\n")


def test_schema_errors_name_line_column_and_letter() -> None:
    bad = GOOD.replace("12/03/1975", "1975-03-12").replace(";F;", ";X;")
    record = read(f"{HEADER}\n{GOOD}\n{bad}\n").records[1]
    assert [e.source for e in record.errors] == [
        "line 3, column 'Date de naissance' (D)",
        "line 3, column 'Sexe' (E)",
    ]
    assert "jj/mm/aaaa" in record.errors[0].message


def test_a_missing_required_value_is_named() -> None:
    record = read(f"{HEADER}\n{GOOD.replace('COI-FR-69-000042', '')}\n").records[0]
    assert record.error.source == "line 2, column 'COI' (F)"
    assert record.error.message == "a value is required"


def test_blank_rows_are_skipped_and_line_numbers_stay_physical() -> None:
    document = read(f"{HEADER}\n\n;;;;\n{GOOD}\n")
    assert [r.location for r in document.records] == ["line 4"]


def test_a_quoted_cell_may_hold_the_separator_and_line_breaks() -> None:
    row = GOOD + ';"RAS; suivi\nHDJ"'
    document = read(f"{HEADER};Commentaire\n{row}\n{GOOD}\n")
    assert document.records[0].data["Commentaire"] == "RAS; suivi\nHDJ"
    assert [r.location for r in document.records] == ["line 2", "line 4"]


def test_an_unquoted_separator_in_a_value_rejects_the_row() -> None:
    record = read(f"{HEADER}\n{GOOD};de trop\n").records[0]
    assert "11 cells" in record.error.message


def test_unknown_columns_are_reported_once() -> None:
    document = read(f"{HEADER};Couleur préférée\n{GOOD};bleu\n")
    assert "Couleur préférée" in document.issues[0].message
    assert document.records[0].error is None


def test_row_limits() -> None:
    with pytest.raises(SourceTooLargeError):
        read(f"{HEADER}\n{GOOD}\n{GOOD}\n", max_records=1)
    record = read(f"{HEADER}\n{GOOD}\n", max_record_bytes=50).records[0]
    assert "longer than the limit" in record.error.message


def test_column_letters() -> None:
    assert [column_letter(i) for i in (0, 25, 26, 27, 701, 702)] == ["A", "Z", "AA", "AB", "ZZ", "AAA"]
