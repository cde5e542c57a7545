"""The validate command: exit codes 0/1/2, text and OperationOutcome JSON reports."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from adapter.validation.cli import validate_command

from .helpers import EX, element, patient, profile


def _file(folder: Path, name: str, content: object) -> str:
    path = folder / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), "utf-8")
    return str(path)


def test_valid_file_exits_0(tmp_path: Path) -> None:
    result = CliRunner().invoke(validate_command, [_file(tmp_path, "p.json", patient(gender="female"))])
    assert result.exit_code == 0, result.output
    assert "valid (0 errors, 0 warnings)" in result.output


def test_invalid_file_exits_1_with_a_text_report(tmp_path: Path) -> None:
    good = _file(tmp_path, "good.json", patient())
    bad = _file(tmp_path, "bad.json", patient(gender="unknown-gender", colour="blue"))
    result = CliRunner().invoke(validate_command, [good, bad])
    assert result.exit_code == 1
    assert "bad.json: INVALID (2 errors" in result.output
    assert "Patient.colour" in result.output


def test_unparseable_resource_is_a_fatal_issue(tmp_path: Path) -> None:
    result = CliRunner().invoke(validate_command, ["--format", "json", _file(tmp_path, "x.json", "{oops")])
    assert result.exit_code == 1
    outcome = json.loads(result.output)
    assert outcome["issue"][0]["severity"] == "fatal"


def test_json_output_is_an_operation_outcome(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        validate_command, ["--format", "json", _file(tmp_path, "p.json", patient(active="yes"))]
    )
    assert result.exit_code == 1
    outcome = json.loads(result.output)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == ["Patient.active"]
    several = CliRunner().invoke(
        validate_command,
        ["--format", "json", _file(tmp_path, "a.json", patient()), _file(tmp_path, "b.json", patient())],
    )
    assert several.exit_code == 0
    bundle = json.loads(several.output)
    assert [e["resource"]["issue"][0]["diagnostics"] for e in bundle["entry"]] == ["All OK", "All OK"]


def test_profiles_from_an_ig_folder(tmp_path: Path) -> None:
    ig = tmp_path / "ig"
    ig.mkdir()
    _file(ig, "sd.json", profile("NeedsGender", "Patient", [element("Patient.gender", min=1)]))
    resource = _file(tmp_path, "p.json", patient())
    url = EX + "StructureDefinition/NeedsGender"
    result = CliRunner().invoke(validate_command, ["--ig", str(ig), "--profile", url, resource])
    assert result.exit_code == 1
    assert "Patient.gender" in result.output


def test_usage_and_loading_problems_exit_2(tmp_path: Path) -> None:
    resource = _file(tmp_path, "p.json", patient())
    runner = CliRunner()
    assert runner.invoke(validate_command, []).exit_code == 2
    assert runner.invoke(validate_command, [str(tmp_path / "missing.json")]).exit_code == 2
    assert runner.invoke(validate_command, ["--ig", str(tmp_path / "nowhere"), resource]).exit_code == 2
    unknown = runner.invoke(validate_command, ["--profile", "http://example.org/unknown", resource])
    assert unknown.exit_code == 2
    assert "unknown profile" in unknown.output
    assert runner.invoke(validate_command, ["--format", "yaml", resource]).exit_code == 2


def test_xml_resources_are_read(tmp_path: Path) -> None:
    xml = '<Patient xmlns="http://hl7.org/fhir"><active value="true"/><gender value="other"/></Patient>'
    result = CliRunner().invoke(validate_command, [_file(tmp_path, "p.xml", xml)])
    assert result.exit_code == 0, result.output
    bad = '<Patient xmlns="http://hl7.org/fhir"><gender value="robot"/></Patient>'
    assert CliRunner().invoke(validate_command, [_file(tmp_path, "bad.xml", bad)]).exit_code == 1
