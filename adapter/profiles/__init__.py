"""The CAR-T FHIR package in profiles/: where it lives, and the build that keeps it in sync with its sources.

`profiles/source/` holds the hand-written definitions (StructureDefinitions as differentials, ValueSets,
CodeSystems); `python -m adapter.profiles.build` writes `profiles/package/` (with generated snapshots) and
`profiles/docs/` from them.
"""

from __future__ import annotations

from pathlib import Path

CANONICAL = "https://cart-adapter.example.org/fhir"
COI_SYSTEM = f"{CANONICAL}/NamingSystem/coi"

# The repository's profiles/ folder (a source checkout; the wheel does not ship it).
PROFILES_DIR = Path(__file__).resolve().parents[2] / "profiles"


def package_dir(profiles_dir: Path = PROFILES_DIR) -> Path:
    """The unpacked FHIR package folder that `load_definitions` and `gate.configure` take."""
    return profiles_dir / "package"


__all__ = ["CANONICAL", "COI_SYSTEM", "PROFILES_DIR", "package_dir"]
