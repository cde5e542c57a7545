"""ER7 escape sequences, including hexadecimal bytes in the message's character set."""

from __future__ import annotations

import pytest

from adapter.mapping.errors import ValueProblem
from adapter.mapping.readers.hl7path import Codec, unescape


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Bât. B \\T\\ escalier 2", "Bât. B & escalier 2"),
        ("A\\F\\B\\S\\C\\R\\D\\E\\E", "A|B^C~D\\E"),
        ("LEF\\XC388\\VRE", "LEFÈVRE"),  # UTF-8 bytes of È
        ("H\\XC3\\\\XA9\\l\\XC3A8\\ne", "Hélène"),  # one character split over two sequences
        ("\\H\\important\\N\\", "important"),
        ("ligne 1\\.br\\ligne 2", "ligne 1\nligne 2"),
        ("C:\\temp", "C:\\temp"),  # a lone backslash is kept
        ("\\Zlocal\\", "\\Zlocal\\"),  # unknown sequences are kept as written
        ("sans échappement", "sans échappement"),
    ],
)
def test_escapes_are_undone(raw: str, expected: str) -> None:
    assert unescape(raw) == expected


def test_hex_bytes_follow_the_message_character_set() -> None:
    assert unescape("GAR\\XC7\\ON", Codec(charset="latin-1")) == "GARÇON"


def test_other_delimiters_declared_in_msh2_are_used() -> None:
    codec = Codec(field="#", component="$", repetition="*", escape="!", subcomponent="@")
    assert unescape("a!F!b!S!c!T!d", codec) == "a#b$c@d"


@pytest.mark.parametrize("raw", ["\\XC3A\\", "\\XZZ\\"])
def test_invalid_hex_is_an_error(raw: str) -> None:
    with pytest.raises(ValueProblem, match="hexadecimal"):
        unescape(raw)
