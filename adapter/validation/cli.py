"""The `validate` command: check resource files against the core definitions and loaded profiles."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from adapter.errors import AdapterError, Issue
from adapter.fhirio.jsonio import dump_json_pretty, parse_json
from adapter.fhirio.outcome import operation_outcome
from adapter.validation.errors import STRUCTURE, ProfileLoadError
from adapter.validation.loader import load_definitions
from adapter.validation.validator import Validator

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def _read_resource(path: Path) -> dict | Issue:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise click.UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix == ".xml":
            from adapter.fhirio.xml import parse_xml

            return parse_xml(data)
        resource = parse_json(data)
    except AdapterError as exc:
        return Issue("fatal", STRUCTURE, f"{path}: {exc.message}")
    if not isinstance(resource, dict):
        return Issue("fatal", STRUCTURE, f"{path}: a resource must be a JSON object")
    return resource


def _text_report(path: str, issues: list[Issue]) -> str:
    counts = {level: sum(1 for i in issues if i.severity == level) for level in ("fatal", "error", "warning")}
    verdict = "INVALID" if counts["fatal"] or counts["error"] else "valid"
    lines = [f"{path}: {verdict} ({counts['error'] + counts['fatal']} errors, {counts['warning']} warnings)"]
    for issue in issues:
        lines.append(f"  {issue.severity:<11} {issue.code:<13} {issue.diagnostics}")
    return "\n".join(lines)


def _emit_json(outcomes: list[tuple[str, list[Issue]]]) -> str:
    if len(outcomes) == 1:
        return dump_json_pretty(operation_outcome(outcomes[0][1]))
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": Path(path).resolve().as_uri(), "resource": operation_outcome(issues)}
            for path, issues in outcomes
        ],
    }
    return dump_json_pretty(bundle)


@click.command("validate")
@click.option(
    "--ig",
    "igs",
    multiple=True,
    metavar="DIR_OR_FILE",
    help="Extra definitions: a folder, a FHIR package folder or .tgz, or a JSON/XML file. Repeatable.",
)
@click.option(
    "--profile", "profiles", multiple=True, metavar="CANONICAL", help="Also validate against this profile."
)
@click.option(
    "--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate_command(
    igs: tuple[str, ...], profiles: tuple[str, ...], output_format: str, files: tuple[Path, ...]
) -> None:
    """Validate FHIR R4 resource FILES (JSON or XML).

    Exit status: 0 when no file has an error, 1 when some file has errors, 2 for usage or loading problems.
    """
    try:
        registry = load_definitions(igs)
        for url in profiles:
            registry.require_structure(url)
    except ProfileLoadError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(EXIT_USAGE)
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise click.UsageError(f"no such file: {', '.join(missing)}")
    validator = Validator(registry)
    outcomes: list[tuple[str, list[Issue]]] = []
    for path in files:
        resource = _read_resource(path)
        if isinstance(resource, Issue):
            issues = [resource]
        else:
            try:
                issues = validator.validate(resource, list(profiles))
            except ProfileLoadError as exc:
                click.echo(f"error: {exc.message}", err=True)
                sys.exit(EXIT_USAGE)
        outcomes.append((str(path), issues))
    if output_format == "json":
        click.echo(_emit_json(outcomes))
    else:
        click.echo("\n".join(_text_report(path, issues) for path, issues in outcomes))
    failed = any(i.severity in ("error", "fatal") for _, issues in outcomes for i in issues)
    sys.exit(EXIT_INVALID if failed else EXIT_OK)


__all__ = ["validate_command"]

if __name__ == "__main__":  # pragma: no cover
    validate_command()
