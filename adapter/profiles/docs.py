"""Markdown pages for the CAR-T package: one per profile or extension, an index and the terminology."""

from __future__ import annotations

import json
from typing import Any

from adapter.profiles import CANONICAL

_CORE_SD = "http://hl7.org/fhir/StructureDefinition/"
_SD = f"{CANONICAL}/StructureDefinition/"
_VS = f"{CANONICAL}/ValueSet/"
_CS = f"{CANONICAL}/CodeSystem/"
_SPEC = "https://hl7.org/fhir/R4"
_OR = " \\| "  # "or" between types inside a table cell


def _cell(text: Any) -> str:
    """Text safe inside a markdown table cell (FHIRPath unions use `|`)."""
    return str(text).replace("\n", " ").replace("|", "\\|")


def _code(text: Any) -> str:
    return f"`{_cell(text)}`" if text not in (None, "") else ""


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), sort_keys=True)


def _canonical_link(url: str) -> str:
    """A link to a canonical: our pages for our definitions, the R4 spec for core ones."""
    bare = url.partition("|")[0]
    if bare.startswith(_SD):
        name = bare[len(_SD) :]
        return f"[{name}]({name}.md)"
    if bare.startswith((_VS, _CS)):
        name = bare.rsplit("/", 1)[-1]
        kind = "ValueSet" if bare.startswith(_VS) else "CodeSystem"
        return f"[{kind} {name}](terminology.md#{kind.lower()}-{name})"
    if bare.startswith(_CORE_SD):
        name = bare[len(_CORE_SD) :]
        return f"[{name}]({_SPEC}/{name.lower()}.html)"
    return f"`{bare}`"


def _types(element: dict) -> str:
    parts = []
    for entry in element.get("type") or ():
        code = str(entry.get("code", ""))
        if code.startswith("http://hl7.org/fhirpath/System."):
            code = code.rsplit(".", 1)[-1].lower()
        targets = entry.get("targetProfile") or entry.get("profile") or []
        if targets:
            parts.append(code + "(" + _OR.join(_canonical_link(t) for t in targets) + ")")
        else:
            parts.append(code)
    return _OR.join(parts)


def _value(element: dict) -> str:
    for key, value in element.items():
        for prefix in ("fixed", "pattern"):
            if key.startswith(prefix) and key[len(prefix) :][:1].isupper():
                return f"{prefix}: {_code(_compact(value))}"
    for key in ("minValueInteger", "maxValueInteger", "minValueDecimal", "maxValueDecimal"):
        if key in element:
            return f"{key[:8]}: {_code(element[key])}"
    return ""


def _binding(element: dict) -> str:
    binding = element.get("binding")
    if not isinstance(binding, dict) or not binding.get("valueSet"):
        return ""
    return f"{binding.get('strength', '?')}: {_canonical_link(binding['valueSet'])}"


def _cardinality(element: dict) -> str:
    return f"{element.get('min', 0)}..{element.get('max', '*')}"


def _notes(element: dict) -> str:
    short, comment = element.get("short"), element.get("comment")
    if short and comment:
        return f"**{_cell(short)}.** {_cell(comment)}"
    return _cell(short or comment or "")


def _examples_for(url: str, examples: dict) -> list[dict]:
    return [
        e for e in examples.get("examples", []) if url == e.get("profile") or url in e.get("exercises", [])
    ]


def _example_lines(url: str, examples: dict) -> list[str]:
    found = _examples_for(url, examples)
    if not found:
        return ["No example yet."]
    lines = []
    for example in sorted(found, key=lambda e: (not e.get("valid"), e["file"])):
        link = f"[{example['file']}](../examples/{example['file']})"
        if example.get("valid"):
            lines.append(f"- valid: {link} — {example.get('description', '')}".rstrip(" —"))
            continue
        expected = ", ".join(
            f"`{v['expression']}` ({v.get('code', '?')})" for v in example.get("violations", [])
        )
        lines.append(f"- invalid: {link} — {example.get('description', '')} Refused at {expected}.")
    return lines


def render_profile(sd: dict, examples: dict) -> str:
    """The page of one StructureDefinition: its constraints as the differential states them."""
    snapshot = {e.get("id"): e for e in sd.get("snapshot", {}).get("element", [])}
    differential = sd.get("differential", {}).get("element", [])
    is_extension = sd["type"] == "Extension"
    lines = [f"# {sd.get('title', sd['name'])}", ""]
    lines.append(f"- Canonical: `{sd['url']}` (version {sd.get('version', '?')})")
    lines.append(f"- Base: {_canonical_link(sd['baseDefinition'])} (FHIR {sd.get('fhirVersion', '?')})")
    if is_extension:
        contexts = ", ".join(f"`{c.get('expression')}`" for c in sd.get("context", []))
        lines.append(f"- Used on: {contexts}")
    lines += ["", sd.get("description", ""), "", f"**Why.** {sd.get('purpose', '')}", ""]

    lines += [
        "## Constraints",
        "",
        "| Element | Card. | Type | Value | Binding | Notes |",
        "|---|---|---|---|---|---|",
    ]
    for element in differential:
        final = snapshot.get(element.get("id"), element)
        if (
            "." not in element["path"]
            and not element.get("sliceName")
            and set(element) <= {"id", "path", "constraint", "short"}
        ):
            continue  # the root only carries the invariants, listed below
        lines.append(
            "| "
            + " | ".join(
                [
                    _code(element.get("id")),
                    _cardinality(final),
                    _types(final),
                    _value(final),
                    _binding(final),
                    _notes(element),
                ]
            )
            + " |"
        )

    sliced = [e for e in differential if isinstance(e.get("slicing"), dict)]
    if sliced:
        lines += ["", "## Slices", ""]
        for element in sliced:
            slicing = element["slicing"]
            discriminators = ", ".join(
                f"{d.get('type')} on `{d.get('path')}`" for d in slicing.get("discriminator", [])
            )
            lines.append(f"`{element['id']}` is sliced by {discriminators} ({slicing.get('rules', 'open')}):")
            lines.append("")
            prefix = element["id"] + ":"
            for piece in differential:
                piece_id = piece.get("id", "")
                if (
                    piece.get("sliceName")
                    and piece_id.startswith(prefix)
                    and "." not in piece_id[len(prefix) :]
                ):
                    final = snapshot.get(piece_id, piece)
                    detail = _slice_value(piece_id, differential) or _types(final)
                    lines.append(f"- `{piece['sliceName']}` {_cardinality(final)}: {detail}")
            lines.append("")
        lines.pop()

    invariants = [(e["id"], c) for e in differential for c in e.get("constraint", [])]
    if invariants:
        lines += [
            "",
            "## Invariants",
            "",
            "| Key | Severity | On | Rule | Expression |",
            "|---|---|---|---|---|",
        ]
        for element_id, constraint in invariants:
            lines.append(
                f"| {constraint['key']} | {constraint.get('severity', 'error')} | `{element_id}` | "
                f"{_cell(constraint.get('human', ''))} | {_code(constraint.get('expression'))} |"
            )
        lines.append("")
        lines.append("Warnings are reported but do not refuse the resource.")

    lines += ["", "## Examples", "", *_example_lines(sd["url"], examples), ""]
    return "\n".join(lines)


def _slice_value(slice_id: str, differential: list[dict]) -> str:
    """The fixed or pattern values inside a slice, which is what tells its items apart."""
    parts = []
    for element in differential:
        element_id = element.get("id", "")
        if element_id == slice_id or element_id.startswith(slice_id + "."):
            value = _value(element)
            if value:
                where = element_id[len(slice_id) + 1 :] or "$this"
                parts.append(f"{where} {value}")
    return "; ".join(parts)


def render_terminology(resources: list[dict]) -> str:
    lines = ["# Terminology", "", "Code systems, value sets and identifier systems of the package.", ""]
    for resource in resources:
        kind = resource["resourceType"]
        if kind == "CodeSystem":
            lines += [f'<a id="codesystem-{resource["id"]}"></a>', f"## CodeSystem {resource['id']}", ""]
            lines += [
                f"`{resource['url']}` — {resource.get('title', '')}",
                "",
                resource.get("description", ""),
                "",
            ]
            lines += ["| Code | Display | Definition |", "|---|---|---|"]
            for concept in resource.get("concept", []):
                lines.append(
                    f"| `{concept['code']}` | {_cell(concept.get('display', ''))} | "
                    f"{_cell(concept.get('definition', ''))} |"
                )
            lines.append("")
        elif kind == "ValueSet":
            lines += [f'<a id="valueset-{resource["id"]}"></a>', f"## ValueSet {resource['id']}", ""]
            lines += [
                f"`{resource['url']}` — {resource.get('title', '')}",
                "",
                resource.get("description", ""),
                "",
            ]
            for include in resource.get("compose", {}).get("include", []):
                system = include.get("system", "?")
                concepts = include.get("concept")
                if concepts:
                    codes = ", ".join(f"`{c['code']}`" for c in concepts)
                    lines.append(f"- from {_canonical_link(system)}: {codes}")
                else:
                    lines.append(f"- every code of {_canonical_link(system)}")
            lines.append("")
        elif kind == "NamingSystem":
            lines += [f"## NamingSystem {resource['id']}", ""]
            for unique in resource.get("uniqueId", []):
                lines.append(f"- {unique.get('type')}: `{unique.get('value')}`")
            lines += ["", resource.get("description", ""), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def render_index(manifest: dict, resources: list[dict], examples: dict) -> str:
    lines = [f"# {manifest.get('title', manifest['name'])}", ""]
    lines.append(
        f"Package `{manifest['name']}` {manifest['version']}, FHIR {', '.join(manifest['fhirVersions'])}, "
        f"canonical `{manifest['canonical']}`. Generated by `python -m adapter.profiles.build` from "
        "`profiles/source/`: do not edit these pages, edit the sources and rebuild."
    )
    lines += ["", "## Profiles", "", "| Profile | Resource | Summary |", "|---|---|---|"]
    definitions = [r for r in resources if r["resourceType"] == "StructureDefinition"]
    for sd in definitions:
        if sd["type"] != "Extension":
            lines.append(
                f"| [{sd['title']}]({sd['id']}.md) | {sd['type']} | {_cell(sd.get('description', ''))} |"
            )
    lines += ["", "## Extensions", "", "| Extension | Used on | Summary |", "|---|---|---|"]
    for sd in definitions:
        if sd["type"] == "Extension":
            contexts = ", ".join(c.get("expression", "") for c in sd.get("context", []))
            lines.append(
                f"| [{sd['title']}]({sd['id']}.md) | {contexts} | {_cell(sd.get('description', ''))} |"
            )
    lines += ["", "Code systems and value sets: [terminology](terminology.md).", ""]
    bundles = examples.get("bundles", [])
    if bundles:
        lines += ["## A whole pathway", ""]
        for bundle in bundles:
            link = f"[{bundle['file']}](../examples/{bundle['file']})"
            count = len(bundle.get("violations", []))
            verdict = "validates clean" if bundle.get("valid") else f"must be refused with {count} errors"
            lines.append(f"- {link} ({verdict}): {bundle.get('description', '')}")
        lines.append("")
    return "\n".join(lines)


def render_docs(manifest: dict, resources: list[dict], examples: dict) -> dict[str, str]:
    """Every page as {file name: markdown}."""
    pages = {
        "index.md": render_index(manifest, resources, examples),
        "terminology.md": render_terminology(resources),
    }
    for resource in resources:
        if resource["resourceType"] == "StructureDefinition":
            pages[f"{resource['id']}.md"] = render_profile(resource, examples)
    return pages


__all__ = ["render_docs", "render_index", "render_profile", "render_terminology"]
