"""Damaged sources are refused or rejected with a reason; they never crash the engine."""

from __future__ import annotations

import random

import pytest

from adapter.errors import AdapterError
from adapter.mapping import MappingRegistry
from tests.unit.mapping.conftest import MAPPINGS

SOURCES = [
    ("hl7v2", "hl7v2/mixed-feed.hl7"),
    ("csv-tracking", "csv-tracking/tracking-sheet.csv"),
    ("json-export", "json-export/export.json"),
    ("xml-reception", "xml-reception/receptions.xml"),
]
NOISE = b"|^~\\&X0 \r\n\xc3\xa9\x00MSH;,\"{}[]:<>/='"


def damaged(data: bytes, seed: int) -> bytes:
    rng = random.Random(seed)
    out = bytearray(data)
    for _ in range(rng.randint(1, 20)):
        position = rng.randrange(len(out))
        choice = rng.random()
        if choice < 0.4:
            out[position] = rng.choice(NOISE)
        elif choice < 0.7:
            del out[position]
        else:
            out.insert(position, rng.choice(NOISE))
    return bytes(out)


@pytest.mark.parametrize(("name", "fixture"), SOURCES)
def test_damaged_sources_are_refused_or_rejected_never_crash(
    registry: MappingRegistry, name: str, fixture: str
):
    data = (MAPPINGS / "fixtures" / fixture).read_bytes()
    for seed in range(60):
        try:
            result = registry.map(name, damaged(data, seed))
        except AdapterError as exc:
            assert exc.status < 500 and exc.message
            continue
        assert result.mapped + len(result.rejected) == result.records
        assert all(issue.message for rejection in result.rejected for issue in rejection.issues)
