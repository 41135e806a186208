"""Shared fixtures: every test gets its own SIRE_HOME and no user config."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def sire_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("sire-home")
    monkeypatch.setenv("SIRE_HOME", str(home))
    monkeypatch.delenv("SIRE_DB", raising=False)
    return home
