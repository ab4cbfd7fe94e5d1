"""Where the shared real minute bars live; a user's checkout has no ../shared, so tests skip."""

from pathlib import Path

import pytest

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


def real_csv(name: str) -> Path:
    """Path of ``../shared/data/real/<name>``, or skip the calling test when it is absent."""
    path = REAL_DATA / name
    if not path.is_file():
        pytest.skip(f"real data not available at {REAL_DATA}")
    return path
