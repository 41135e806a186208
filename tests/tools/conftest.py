"""Fixtures for the built-in tools: a workspace, and `call`, which dispatches as the engine does."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from sire.dispatch.dispatcher import DispatchContext
from sire.dispatch.inprocess import InProcessDispatcher
from sire.model.uri import ToolURI
from sire.tools import ToolSettings, builtin_server

Call = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """An empty workspace directory, with `tmp_path/outside` beside it."""
    (tmp_path / "outside").mkdir()
    root = tmp_path / "workspace"
    root.mkdir()
    return root


@pytest.fixture
def call(workspace: Path) -> Call:
    """`await call(tool, params, settings=...)`: the tool's output, through the schema checks."""

    async def call(
        tool: str, params: dict[str, Any], settings: ToolSettings | None = None
    ) -> dict[str, Any]:
        dispatcher = InProcessDispatcher(builtin_server(settings or ToolSettings()))
        ctx = DispatchContext(execution_id="e", step_id="s", workspace=str(workspace))
        return await dispatcher.dispatch(ctx, ToolURI.parse(f"sire:local/{tool}"), params)

    return call
