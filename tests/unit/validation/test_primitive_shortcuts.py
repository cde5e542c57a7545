"""The hot-path primitive checks (no regex for printable text, lazy XHTML tests) agree with the full rules."""

from __future__ import annotations

import random
import re

import pytest

from adapter.validation import primitives
from adapter.validation.primitives import MAX_STRING, _detailed_checker, _regex, primitive_checker
from adapter.validation.validator import Validator

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_ALPHABET = "ab Z09:/.-_#é\u00a0\u202f\u2003\t\n\r\x0b\x0c\x01\x1f<>'\""


def _oracle(type_code: str, value: object) -> bool:
    """Valid by the definitions' regex alone, as the validator judged before the shortcuts."""
    if type(value) is not str or not value or len(value) > MAX_STRING or _CONTROL.search(value):
        return False
    return re.fullmatch(f"(?:{_regex(type_code)})", value, re.ASCII) is not None


def _samples() -> list[str]:
    rnd = random.Random(7)
    out = ["", " ", "a", "a b", "a  b", " a", "a ", "final", "http://x.org/a b", "https://x.org/fhir"]
    for _ in range(4000):
        out.append("".join(rnd.choice(_ALPHABET) for _ in range(rnd.randint(0, 8))))
    return out


@pytest.mark.parametrize("type_code", ["string", "markdown", "code", "uri", "url", "canonical", "id"])
def test_fast_checks_agree_with_the_regex(type_code: str) -> None:
    check = primitive_checker(type_code)
    for value in _samples():
        assert (check(value) is None) is _oracle(type_code, value), (type_code, value)
        # A rejected value is explained as the detailed rules explain it.
        if check(value) is not None:
            assert check(value) == _detailed_checker(type_code, "string")(value)


def _old_xhtml(value: str) -> str | None:
    """The narrative rules as they were written before the lazy forms."""
    if not re.match(r'\s*<div\b[^>]*\bxmlns\s*=\s*["\']http://www\.w3\.org/1999/xhtml["\']', value, re.S):
        return "div"
    if primitives._XHTML_FORBIDDEN.search(value):
        return "forbidden"
    if not re.sub(r"<[^>]*>", "", value).strip() and "<img" not in value:
        return "empty"
    return None


DIV = '<div xmlns="http://www.w3.org/1999/xhtml">'


@pytest.mark.parametrize(
    "value",
    [
        DIV + "<p>text</p></div>",
        DIV + "<p> </p></div>",
        DIV + "<p>\u00a0</p></div>",
        DIV + "<p>a > b</p></div>",
        DIV + "<p><b></b>\n</p></div>",
        DIV + "<p>< </p></div>",
        DIV + "<img src='x'/></div>",
        DIV + "x<script>a</script></div>",
        DIV + "</div>",
        '<div class="a" xmlns="http://www.w3.org/1999/xhtml">t</div>',
        '<div xmlns="http://example.org">t</div>',
        "<div>t</div>",
        "  <div id=\"x\"   xmlns = 'http://www.w3.org/1999/xhtml'><p>t</p></div>",
        DIV + "<p>></p></div>",
    ],
)
def test_narrative_rules_agree_with_the_former_ones(value: str) -> None:
    result = primitive_checker("xhtml")(value)
    expected = _old_xhtml(value)
    assert (result is None) is (expected is None), (value, result)


def test_random_narratives_agree() -> None:
    rnd = random.Random(11)
    parts = ["<p>", "</p>", " ", "\n", "x", "<b>", ">", "<", "\u00a0", "<img/>", "<br/>"]
    for _ in range(3000):
        value = DIV + "".join(rnd.choice(parts) for _ in range(rnd.randint(0, 6))) + "</div>"
        assert (primitive_checker("xhtml")(value) is None) is (_old_xhtml(value) is None), value


def test_an_empty_uri_is_reported(core_validator: Validator) -> None:
    # `\S*` matches "": the fast path used to let an empty uri through unreported.
    text = {"status": "generated", "div": DIV + "x</div>"}
    patient = {"resourceType": "Patient", "implicitRules": "", "text": text}
    messages = [i.diagnostics for i in core_validator.validate(patient)]
    assert messages == ["Patient.implicitRules: must not be empty (found '', type uri)"]
