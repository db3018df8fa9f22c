"""Where the project's files are, whichever folder a test file sits in."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_models"
#: Small models of the evaluation zoo with their data (tests/models/README.md).
TEST_MODELS = ROOT / "tests" / "models"


def sample_path(name: str) -> Path:
    return SAMPLES / name
