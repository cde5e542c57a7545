"""Reading mapping files (YAML through safe_load, or JSON) and the JSON Schemas that check them."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from adapter.mapping.errors import MappingSpecError

_lock = threading.Lock()
_validators: dict[Path, Draft202012Validator] = {}


def default_mappings_dir() -> Path:
    """CART_ADAPTER_MAPPINGS_DIR when set, else the mappings/ folder beside the package (a checkout),
    else ./mappings (an installed package run from the project folder, as in the container)."""
    configured = os.environ.get("CART_ADAPTER_MAPPINGS_DIR")
    if configured:
        return Path(configured)
    beside = Path(__file__).resolve().parents[2] / "mappings"
    return beside if beside.is_dir() else Path.cwd() / "mappings"


def load_document(path: Path) -> Any:
    """A YAML or JSON file as plain data.

    Raises:
        MappingSpecError: the file is missing or is not valid YAML/JSON.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingSpecError(f"cannot read {path}: {exc}") from None
    try:
        if path.suffix == ".json":
            return json.loads(text)
        # safe_load builds plain dicts, lists and scalars only: a spec can never construct Python objects.
        return yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise MappingSpecError(
            f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}"
        ) from None


def schema_validator(mappings_dir: Path, relative: str) -> Draft202012Validator:
    """A compiled validator for a schema file of the mappings folder, built once per process.

    Raises:
        MappingSpecError: the schema file is missing or is not a valid JSON Schema.
    """
    path = (mappings_dir / relative).resolve()
    with _lock:
        found = _validators.get(path)
    if found is not None:
        return found
    if not path.is_relative_to(mappings_dir.resolve()):
        raise MappingSpecError(f"schema {relative} is outside the mappings folder")
    schema = load_document(path)
    try:
        Draft202012Validator.check_schema(schema)
    except Exception as exc:  # jsonschema raises SchemaError; any failure means the file is unusable
        raise MappingSpecError(f"{relative} is not a valid JSON Schema: {exc}") from None
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    with _lock:
        _validators[path] = validator
    return validator
