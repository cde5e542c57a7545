"""Loading definitions from folders, NPM package folders, .tgz packages and single files."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from adapter.validation.errors import ProfileLoadError
from adapter.validation.loader import load_definitions, load_source, read_package_tgz
from adapter.validation.registry import ProfileRegistry

from .helpers import EX, code_system, element, extension_definition, profile, value_set

SD = EX + "StructureDefinition/"


def _definitions() -> list[dict]:
    return [
        profile("LoadedPatient", "Patient", [element("Patient.gender", min=1)]),
        extension_definition("loaded-ext", "string"),
        code_system("loaded", [{"code": "a"}]),
        value_set("loaded", [{"system": EX + "CodeSystem/loaded"}]),
    ]


def _write(folder: Path, resources: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index, resource in enumerate(resources):
        (folder / f"{resource['resourceType']}-{index}.json").write_text(json.dumps(resource), "utf-8")


def _tgz(files: dict[str, bytes], *, link: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo("package/evil.json")
            info.type = tarfile.SYMTYPE
            info.linkname = link
            archive.addfile(info)
    return buffer.getvalue()


def _package_files() -> dict[str, bytes]:
    files = {"package/package.json": json.dumps({"name": "example.fhir", "version": "1.0.0"}).encode()}
    for index, resource in enumerate(_definitions()):
        files[f"package/{resource['resourceType']}-{index}.json"] = json.dumps(resource).encode()
    files["package/other/ignored.json"] = b"not even json"
    files["package/.index.json"] = json.dumps({"index-version": 1, "files": []}).encode()
    return files


def _assert_loaded(registry: ProfileRegistry) -> None:
    assert registry.structure(SD + "LoadedPatient") is not None
    assert registry.structure(SD + "loaded-ext") is not None
    assert registry.value_set(EX + "ValueSet/loaded") is not None
    assert registry.code_system(EX + "CodeSystem/loaded") is not None


def test_load_from_a_plain_folder(tmp_path: Path) -> None:
    _write(tmp_path / "defs" / "nested", _definitions())
    (tmp_path / "defs" / "README.md").write_text("not a definition")
    (tmp_path / "defs" / "example-patient.json").write_text(json.dumps({"resourceType": "Patient"}))
    _assert_loaded(load_definitions([tmp_path / "defs"]))


def test_load_from_a_package_folder(tmp_path: Path) -> None:
    for name, data in _package_files().items():
        target = tmp_path / "pkg" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    _assert_loaded(load_definitions([tmp_path / "pkg"]))


def test_load_from_a_tgz_package(tmp_path: Path) -> None:
    archive = tmp_path / "example.fhir-1.0.0.tgz"
    archive.write_bytes(_tgz(_package_files()))
    _assert_loaded(load_definitions([archive]))


def test_unsafe_archives_are_refused() -> None:
    with pytest.raises(ProfileLoadError, match="escaping"):
        list(read_package_tgz(_tgz({"../../etc/x.json": b"{}"})))
    with pytest.raises(ProfileLoadError, match="absolute"):
        list(read_package_tgz(_tgz({"/etc/x.json": b"{}"})))
    with pytest.raises(ProfileLoadError, match="link"):
        list(read_package_tgz(_tgz({}, link="/etc/passwd")))
    with pytest.raises(ProfileLoadError, match="not a readable package"):
        list(read_package_tgz(b"garbage"))


def test_single_json_and_xml_files(tmp_path: Path) -> None:
    registry = ProfileRegistry()
    sd = tmp_path / "sd.json"
    sd.write_text(json.dumps(_definitions()[0]))
    assert load_source(sd, registry) == 1
    xml = tmp_path / "cs.xml"
    xml.write_text(
        '<CodeSystem xmlns="http://hl7.org/fhir"><url value="http://example.org/fhir/CodeSystem/x"/>'
        '<status value="active"/><content value="complete"/><concept><code value="a"/></concept></CodeSystem>'
    )
    assert load_source(xml, registry) == 1
    assert registry.code_system(EX + "CodeSystem/x")["concept"][0]["code"] == "a"


def test_bad_sources_are_clear_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ProfileLoadError) as caught:
        load_definitions([tmp_path / "missing"])
    assert caught.value.code == "not-found"
    broken = tmp_path / "broken.json"
    broken.write_text("{nope")
    with pytest.raises(ProfileLoadError, match="broken.json: not valid JSON"):
        load_definitions([broken])
    orphan = tmp_path / "orphan.json"
    orphan.write_text(json.dumps(profile("Orphan", "Patient", [], base=SD + "Missing")))
    with pytest.raises(ProfileLoadError, match="base definition") as caught:
        load_definitions([orphan])
    assert caught.value.to_issue().code == "not-found"
    malformed = tmp_path / "malformed.json"
    malformed.write_text(json.dumps({"resourceType": "StructureDefinition", "url": "http://x/y"}))
    with pytest.raises(ProfileLoadError, match="malformed.json"):
        load_definitions([malformed])
    other = tmp_path / "notes.txt"
    other.write_text("x")
    with pytest.raises(ProfileLoadError, match="not a .json"):
        load_definitions([other])
