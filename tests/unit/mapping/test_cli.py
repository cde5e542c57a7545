"""The interface engineer's commands, run through click's CliRunner."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from adapter.errors import Issue
from adapter.mapping.cli import make_map_command, map_command, mapping_group
from tests.unit.mapping.conftest import MAPPINGS

ADT = MAPPINGS / "fixtures/hl7v2-adt/a01-ins-utf8.hl7"
BATCH = MAPPINGS / "fixtures/hl7v2-adt/mixed-batch.hl7"


def test_map_prints_the_bundle_and_a_summary() -> None:
    result = CliRunner().invoke(map_command, ["--mapping", "hl7v2-adt", str(ADT)])
    assert result.exit_code == 0, result.output
    bundle = json.loads(result.stdout)
    assert bundle["type"] == "transaction" and len(bundle["entry"]) == 2
    assert "1 record(s), 1 mapped, 0 rejected" in result.stderr


def test_map_writes_to_a_file_and_exits_1_when_records_are_rejected(tmp_path: Path) -> None:
    out = tmp_path / "bundle.json"
    result = CliRunner().invoke(map_command, ["--mapping", "hl7v2-adt", str(BATCH), "--out", str(out)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert json.loads(out.read_text(encoding="utf-8"))["entry"]
    assert "rejected message 3 (MSH-10 ADT0103)" in result.stderr
    assert "PID-7" in result.stderr and "Patient.birthDate" in result.stderr


def test_map_exits_1_when_the_input_holds_no_record() -> None:
    result = CliRunner().invoke(map_command, ["--mapping", "hl7v2-adt", "-"], input=b"")
    assert result.exit_code == 1
    assert "0 record(s)" in result.stderr and "no record could be mapped" in result.stderr


def test_map_reads_standard_input() -> None:
    result = CliRunner().invoke(map_command, ["--mapping", "hl7v2-adt", "-"], input=ADT.read_bytes())
    assert result.exit_code == 0


def test_validate_without_a_validator_says_so_and_exits_2() -> None:
    result = CliRunner().invoke(map_command, ["--mapping", "hl7v2-adt", str(ADT), "--validate"])
    assert result.exit_code == 2
    assert "validation is not available yet" in result.stderr


def test_validate_uses_the_hook_it_is_given() -> None:
    seen = []

    def hook(bundle: dict) -> list[Issue]:
        seen.append(bundle)
        return [Issue("error", "invariant", "Patient: fr-core-1 failed", ("Bundle.entry[1].resource",))]

    result = CliRunner().invoke(make_map_command(hook), ["--mapping", "hl7v2-adt", str(ADT), "--validate"])
    assert result.exit_code == 1
    assert seen and seen[0]["type"] == "transaction"
    assert "validation: 1 error(s)" in result.stderr and "fr-core-1" in result.stderr


def test_unknown_mapping_and_refused_sources_are_errors() -> None:
    result = CliRunner().invoke(map_command, ["--mapping", "nope", str(ADT)])
    assert result.exit_code == 1 and "no mapping named 'nope'" in result.stderr
    wrong = MAPPINGS / "fixtures/csv-tracking/wrong-separator.csv"
    result = CliRunner().invoke(map_command, ["--mapping", "csv-tracking", str(wrong)])
    assert result.exit_code == 1 and "lacks the column" in result.stderr


def test_mapping_test_runs_every_fixture() -> None:
    result = CliRunner().invoke(mapping_group, ["test"])
    assert result.exit_code == 0, result.output
    assert "ok       hl7v2-adt/a01-ins-utf8.hl7" in result.stdout
    assert result.stdout.rstrip().endswith("fixtures match")


def test_mapping_test_shows_a_unified_diff_and_exits_1_on_mismatch(tmp_path: Path) -> None:
    folder = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, folder)
    expected = folder / "fixtures/hl7v2-adt/a01-ins-utf8.expected.json"
    expected.write_text(
        expected.read_text(encoding="utf-8").replace('"1975-03-12"', '"1975-03-21"'), encoding="utf-8"
    )
    result = CliRunner().invoke(mapping_group, ["test", "hl7v2-adt", "--mappings-dir", str(folder)])
    assert result.exit_code == 1
    assert "MISMATCH hl7v2-adt/a01-ins-utf8.hl7" in result.stdout
    lines = result.stdout.splitlines()
    assert any(line.startswith("-") and '"birthDate": "1975-03-21"' in line for line in lines)
    assert any(line.startswith("+") and '"birthDate": "1975-03-12"' in line for line in lines)
    assert "2 of 3 fixtures match" in result.stdout
    update = CliRunner().invoke(
        mapping_group, ["test", "hl7v2-adt", "--update", "--mappings-dir", str(folder)]
    )
    assert "updated  hl7v2-adt/a01-ins-utf8.hl7" in update.stdout
    assert (
        CliRunner().invoke(mapping_group, ["test", "hl7v2-adt", "--mappings-dir", str(folder)]).exit_code == 0
    )


def test_mapping_list_and_check() -> None:
    listed = CliRunner().invoke(mapping_group, ["list"])
    assert "hl7v2-adt\thl7v2 (ADT^A01, ADT^A04, ADT^A08)" in listed.stdout
    assert "csv-tracking\tcsv" in listed.stdout
    checked = CliRunner().invoke(mapping_group, ["check"])
    assert checked.exit_code == 0 and "all mapping specs compile" in checked.stdout


def test_progress_is_reported_after_each_record() -> None:
    from adapter.mapping import MappingRegistry

    calls: list[tuple[int, int]] = []
    MappingRegistry(MAPPINGS).map("hl7v2-adt", BATCH.read_bytes(), progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]


def test_the_progress_bar_only_shows_for_large_sources() -> None:
    from adapter.mapping.cli import PROGRESS_FROM, _ProgressBar

    small = _ProgressBar()
    small(1, PROGRESS_FROM - 1)
    assert small.bar is None
    large = _ProgressBar()
    for done in range(1, PROGRESS_FROM + 1):
        large(done, PROGRESS_FROM)
    assert large.bar is not None and large.bar.disable  # no terminal under pytest: created but silent
    large.close()
