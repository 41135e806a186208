"""Fixtures for SDK tests: `sire(...)` in-process, and a config allowing `exec` of this Python."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from sire.cli.main import main

FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLES = Path(__file__).parents[2] / "examples"


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def sire(capsys: pytest.CaptureFixture[str]) -> Any:
    def call(*args: str) -> Result:
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return call


@pytest.fixture
def allow_python(sire_home: Path) -> str:
    """Allow the `exec` tool to run this Python; return its path."""
    (sire_home / "config.yaml").write_text(f"exec:\n  allow: [{json.dumps(sys.executable)}]\n")
    return sys.executable
