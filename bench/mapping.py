"""Mapping throughput on one core: 10,000 HL7 v2 messages and a 10,000-row CSV, beside reading them only.

Run: python -m bench.mapping [--count 10000] [--rounds 5]

"read" is the reader's whole work (split, decode, parse each message / row, shape check); "map" is read
plus the engine: picked values, conditions, code tables, templates, identities and the transaction
Bundle, without profile validation. The ratio map/read shows the engine's overhead (target >= 0.3).
Rates are records per second of this process's CPU time (time.process_time), so other load on the
machine disturbs them less than wall-clock time would; read and map alternate within each round.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from adapter.mapping import MappingRegistry

FIXTURES = Path(__file__).resolve().parents[1] / "mappings" / "fixtures"
INS = "275036938312363"
COI = "COI-FR-69-000042"
IPP = "IPP00482913"


def _messages(path: Path) -> list[str]:
    text = path.read_bytes().decode("utf-8")
    return ["MSH" + chunk for chunk in text.split("MSH")[1:]]


def hl7_feed(count: int) -> bytes:
    """A feed of every shipped message kind (ADT, SIU, OMP, RAS, ORU), each for a different patient."""
    feed = _messages(FIXTURES / "hl7v2" / "mixed-feed.hl7")[:4]  # ADT, OMP, ORU, RAS (the ACK is left out)
    feed.append(_messages(FIXTURES / "hl7v2-siu" / "appointments.hl7")[0])
    out = []
    for i in range(count):
        template = feed[i % len(feed)]
        patient = i // len(feed)
        out.append(
            template.replace(INS, f"2{75 + patient % 20:02d}03{patient % 90 + 10:02d}{patient:06d}15")
            .replace(COI, f"COI-FR-69-{patient:06d}")
            .replace(IPP, f"IPP{patient:08d}")
            .replace("|P|2.5|", f"-{i}|P|2.5|", 1)
        )
    return "".join(out).encode("utf-8")


def csv_sheet(count: int) -> bytes:
    """The tracking sheet with `count` pathways built from the fixture's complete rows."""
    lines = (FIXTURES / "csv-tracking" / "tracking-sheet.csv").read_bytes().decode("utf-8-sig").splitlines()
    header, rows = lines[0], lines[1:3]
    out = [header]
    for i in range(count):
        row = rows[i % 2]
        out.append(
            row.replace(INS, f"2{75 + i % 20:02d}0369{i % 1000:03d}{i // 1000 % 1000:03d}63")
            .replace("162117511604574", f"1{62 + i % 20:02d}1175{i % 1000:03d}{i // 1000 % 1000:03d}74")
            .replace(COI, f"COI-FR-69-{i:06d}")
            .replace("COI-FR-69-000077", f"COI-FR-70-{i:06d}")
        )
    return ("\r\n".join(out) + "\r\n").encode("utf-8")


def _cpu_seconds(work: Callable[[], object]) -> float:
    start = time.process_time()
    work()
    return time.process_time() - start


def measure(registry: MappingRegistry, name: str, data: bytes, rounds: int) -> dict:
    registry.get(name)  # compiled once, before timing: as in a running service
    records = len(registry.read(name, data).records)

    def read() -> None:
        for record in registry.read(name, data).records:
            record.load()  # records parsed lazily (HL7 v2) are parsed here, as mapping does
            record.unload()

    result = registry.map(name, data)  # warm-up, and the result shown
    reads, maps = [], []
    for _ in range(rounds):
        reads.append(_cpu_seconds(read))
        maps.append(_cpu_seconds(lambda: registry.map(name, data)))
    return {
        "name": name,
        "records": records,
        "mapped": result.mapped,
        "rejected": len(result.rejected),
        "entries": len(result.bundle["entry"]),
        "read": records / statistics.median(reads),
        "map": records / statistics.median(maps),
        "ratio": statistics.median(r / m for r, m in zip(reads, maps, strict=True)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="messages / rows per source")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds; medians are printed")
    args = parser.parse_args(argv)
    registry = MappingRegistry()
    rows = [
        measure(registry, "hl7v2", hl7_feed(args.count), args.rounds),
        measure(registry, "csv-tracking", csv_sheet(args.count), args.rounds),
    ]
    version = sys.version.split()[0]
    print(f"mapping throughput, one core (CPU time), median of {args.rounds} rounds, Python {version}")
    print(f"{'source':<14}{'records':>9}{'read/s':>10}{'map/s':>10}{'map/read':>10}  result")
    for row in rows:
        unit = "messages" if row["name"] == "hl7v2" else "rows"
        print(
            f"{row['name']:<14}{row['records']:>9}{row['read']:>10.0f}{row['map']:>10.0f}"
            f"{row['ratio']:>10.2f}  {row['mapped']} {unit} mapped, {row['rejected']} rejected, "
            f"{row['entries']} Bundle entries"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
