"""Fixtures for SDK tests: `sire(...)` in-process, and a config allowing `exec` of this Python."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture
def allow_python(sire_home: Path) -> str:
    """Allow the `exec` tool to run this Python; return its path."""
    (sire_home / "config.yaml").write_text(f"exec:\n  allow: [{json.dumps(sys.executable)}]\n")
    return sys.executable
