"""Regenerate profiles/package (snapshots, index) and profiles/docs from profiles/source.

Same as `python -m adapter.profiles.build`; `--check` reports out-of-date files without writing.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run from a checkout without installing: make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapter.profiles.build import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
