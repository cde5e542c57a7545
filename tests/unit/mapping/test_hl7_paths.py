"""HL7 v2 paths: segment, occurrence, field, repetition (by number or content), component, subcomponent."""

from __future__ import annotations

import pytest

from adapter.mapping.errors import MappingSpecError
from adapter.mapping.readers import Limits
from adapter.mapping.readers.hl7path import compile_hl7_path
from adapter.mapping.readers.hl7v2 import Hl7v2Reader

TEXT = (
    "MSH|^~\\&|DXCARE|HCL^690781810^FINESS|CART|CTC|20250312101500||ADT^A01^ADT_A01|C1|P|2.5\r"
    "PID|1||IPP00482913^^^HCL&1.2.250.1.71.4.2.2.1690781810&ISO^PI~"
    "275036938312363^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS~"
    "184043155504693^^^ASIP-SANTE-INS-NIA&1.2.250.1.213.1.4.9&ISO^INS||"
    'LEFÈVRE^Hélène^Marie^^^^L~MARTIN^Hélène^^^^^D||19750312|F|||""\r'
    "OBX|1|NM|LYMPH^Lymphocytes||0,85\r"
    "OBX|2|NM|TEMP^Température||-182,4\r"
)


@pytest.fixture(scope="module")
def msg():
    return Hl7v2Reader({}, Limits()).read(TEXT.encode()).records[0].data


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("MSH-9.1", "ADT"),
        ("MSH-9.2", "A01"),
        ("MSH-4.2", "690781810"),
        ("MSH-10", "C1"),
        ("PID-3.1", "IPP00482913"),  # first repetition by default
        ("PID-3[2].1", "275036938312363"),
        ("PID-3(INS).1", "275036938312363"),  # first repetition whose CX.5 is INS
        ("PID-3(INS,4.2=1.2.250.1.213.1.4.9).1", "184043155504693"),
        ("PID-3(PI).4.2", "1.2.250.1.71.4.2.2.1690781810"),
        ("PID-3(4.1=HCL).1", "IPP00482913"),
        ("PID-3(XX).1", None),
        ("PID-5", "LEFÈVRE"),  # a field means its first component
        ("PID-5(7=D).1", "MARTIN"),
        ("PID-5[2].2", "Hélène"),
        ("PID-7", "19750312"),
        ("PID-11", None),  # "" is the HL7 null
        ("PID-99", None),
        ("OBX-5", "0,85"),
        ("OBX[2]-5", "-182,4"),
        ("OBX[3]-5", None),
        ("ZZZ-1", None),
    ],
)
def test_paths_pick_the_expected_value(msg, path: str, expected: str | None) -> None:
    assert compile_hl7_path(path, "test")(msg) == expected


def test_a_star_returns_every_repetition_or_segment(msg) -> None:
    assert compile_hl7_path("PID-3[*].1", "t")(msg) == ["IPP00482913", "275036938312363", "184043155504693"]
    assert compile_hl7_path("OBX[*]-3.1", "t")(msg) == ["LYMPH", "TEMP"]
    assert compile_hl7_path("NTE[*]-3", "t")(msg) == []


@pytest.mark.parametrize(
    "path", ["PID", "PID-", "PID-0", "pid-3", "PID-3[0]", "PID-3.1.2.3", "PID-3()", "PID-3(=X)"]
)
def test_malformed_paths_are_spec_errors(path: str) -> None:
    with pytest.raises(MappingSpecError, match="let.x"):
        compile_hl7_path(path, "let.x")
