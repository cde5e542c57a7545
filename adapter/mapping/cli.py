"""Command-line tools for interface engineers: `map` a source file, and `mapping test|list|check`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click

from adapter.errors import AdapterError, Issue
from adapter.fhirio.jsonio import dump_json_pretty
from adapter.mapping.api import MappingRegistry
from adapter.mapping.fixtures import discover, run, update
from adapter.mapping.result import MappingResult

ValidateHook = Callable[[dict], list[Issue]]
PROGRESS_FROM = 200  # records; below this a progress bar is only noise

_MAPPINGS_DIR = click.option(
    "--mappings-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    envvar="CART_ADAPTER_MAPPINGS_DIR",
    help="folder of the mapping specs (default: the checkout's mappings/)",
)


class _ProgressBar:
    """A tqdm bar on stderr, opened once the size of the source is known and only when it is large."""

    def __init__(self) -> None:
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            if total < PROGRESS_FROM:
                return
            from tqdm import tqdm

            # disable=None: no bar when stderr is not a terminal (CI logs, pipes).
            self.bar = tqdm(total=total, unit="record", file=sys.stderr, disable=None, leave=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _print_issues(issues: list[Issue]) -> None:
    for issue in issues:
        where = f" [{', '.join(issue.expression)}]" if issue.expression else ""
        click.echo(f"  {issue.severity}: {issue.diagnostics}{where}", err=True)


def make_map_command(validate_hook: ValidateHook | None = None) -> click.Command:
    """The `map` command; `validate_hook(bundle) -> issues` is the profile validator, once it exists."""

    @click.command("map")
    @click.option(
        "--mapping", "mapping_name", required=True, help="name of the spec in mappings/ (e.g. hl7v2-adt)"
    )
    @click.argument("input_file", metavar="INPUT", type=click.File("rb"))
    @click.option("--validate", is_flag=True, help="check the Bundle against the profiles")
    @click.option(
        "--out",
        type=click.Path(dir_okay=False, writable=True, path_type=Path),
        default=None,
        help="write the Bundle to FILE instead of standard output",
    )
    @click.option("--content-type", default=None, help="e.g. 'text/csv; charset=windows-1252'")
    @_MAPPINGS_DIR
    def map_command(
        mapping_name: str,
        input_file: click.utils.LazyFile,
        validate: bool,
        out: Path | None,
        content_type: str | None,
        mappings_dir: Path | None,
    ) -> None:
        """Map INPUT (HL7 v2, CSV, JSON or XML; '-' for stdin) to a FHIR transaction Bundle.

        The Bundle goes to standard output (or --out); the summary - records mapped, rejected and why -
        to standard error. Exit status: 0 all mapped, 1 some records rejected or invalid, or none mapped,
        2 usage error.
        """
        if validate and validate_hook is None:
            raise click.UsageError(
                "validation is not available yet (the profile validator is not wired in)", None
            )
        registry = MappingRegistry(mappings_dir)
        progress = _ProgressBar()
        try:
            result = registry.map(mapping_name, input_file.read(), content_type, progress=progress)
        except AdapterError as exc:
            raise click.ClickException(exc.message) from None
        finally:
            progress.close()
        text = dump_json_pretty(result.bundle) + "\n"
        if out is not None:
            # click checks only that --out is not a folder; its parent may be missing or read-only.
            try:
                out.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise click.ClickException(f"cannot write {out}: {exc.strerror or exc}") from None
        else:
            click.echo(text, nl=False)
        click.echo(result.summary(), err=True)
        failed = not result.ok
        if not result.bundle.get("entry"):
            # As POST /ingest answers 422: an empty Bundle is not a successful mapping.
            click.echo("no record could be mapped", err=True)
            failed = True
        if validate and validate_hook is not None:
            failed = _validate(result, validate_hook) or failed
        sys.exit(1 if failed else 0)

    return map_command


def _validate(result: MappingResult, hook: ValidateHook) -> bool:
    issues = hook(result.bundle)
    errors = [i for i in issues if i.severity in ("error", "fatal")]
    click.echo(f"validation: {len(errors)} error(s), {len(issues) - len(errors)} other issue(s)", err=True)
    _print_issues(issues)
    return bool(errors)


map_command = make_map_command()


@click.group("mapping")
def mapping_group() -> None:
    """Mapping specs: list them, check they compile, run their fixtures."""


@mapping_group.command("list")
@_MAPPINGS_DIR
def list_command(mappings_dir: Path | None) -> None:
    """The specs of the mappings folder with their input format."""
    registry = MappingRegistry(mappings_dir)
    for name in registry.names():
        try:
            mapping = registry.get(name)
        except AdapterError as exc:
            click.echo(f"{name}\tINVALID: {exc.message}")
            continue
        kinds = ", ".join(mapping.accepted_types)
        click.echo(f"{name}\t{mapping.format}" + (f" ({kinds})" if kinds else ""))


@mapping_group.command("check")
@_MAPPINGS_DIR
def check_command(mappings_dir: Path | None) -> None:
    """Load and compile every spec, its fragments, tables and schemas; exit 1 on any problem."""
    problems = MappingRegistry(mappings_dir).check_all()
    for name, message in problems.items():
        click.echo(f"{name}: {message}", err=True)
    if problems:
        sys.exit(1)
    click.echo("all mapping specs compile")


@mapping_group.command("test")
@click.argument("name", required=False)
@click.option("--update", "write", is_flag=True, help="rewrite the expected files from the current mappings")
@_MAPPINGS_DIR
def test_command(name: str | None, write: bool, mappings_dir: Path | None) -> None:
    """Run the fixtures of mapping NAME (default: all): input -> expected result, diff on mismatch."""
    registry = MappingRegistry(mappings_dir)
    fixtures = discover(registry.mappings_dir, name)
    if not fixtures:
        raise click.UsageError(
            f"no fixtures found for {name or 'any mapping'} in {registry.mappings_dir / 'fixtures'}"
        )
    failed = 0
    for fixture in fixtures:
        label = f"{fixture.mapping}/{fixture.input_path.name}"
        try:
            if write:
                changed = update(fixture, registry)
                click.echo(f"{'updated' if changed else 'unchanged'}  {label}")
                continue
            outcome = run(fixture, registry)
        except AdapterError as exc:
            failed += 1
            click.echo(f"ERROR    {label}: {exc.message}")
            continue
        if outcome.passed:
            click.echo(f"ok       {label}")
        else:
            failed += 1
            click.echo(f"MISMATCH {label}")
            click.echo(outcome.diff)
    if not write:
        click.echo(f"{len(fixtures) - failed} of {len(fixtures)} fixtures match")
    if failed:
        sys.exit(1)
