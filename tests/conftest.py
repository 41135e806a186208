"""Shared fixtures: every test gets its own SIRE_HOME and no user config; `sire(...)` runs
the command line in-process, `write(...)` writes a workflow file."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sire.cli.main import main


@pytest.fixture(autouse=True)
def sire_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("sire-home")
    monkeypatch.setenv("SIRE_HOME", str(home))
    monkeypatch.delenv("SIRE_DB", raising=False)
    monkeypatch.delenv("SIRE_ARTIFACTS", raising=False)
    monkeypatch.delenv("SIRE_ARTIFACT_THRESHOLD", raising=False)
    return home


class Result:
    """What one in-process `sire` command did: exit status, stdout, stderr."""

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
def write(tmp_path: Path) -> Any:
    def write(text: str, name: str = "wf.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write
