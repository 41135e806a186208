"""Pieces every command shares: common options and the JSON shape of an execution."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from sire.model.execution import Execution

if TYPE_CHECKING:
    from sire.config import Config
    from sire.storage.base import Store

T = TypeVar("T")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document at the end.")]
FileArgument = Annotated[
    Path, typer.Argument(help="The workflow file.", metavar="FILE", show_default=False)
]
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db", envvar="SIRE_DB", help="Store URL: sqlite:///path [default: $SIRE_HOME/sire.db]."
    ),
]
VerboseFlag = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show tracebacks for errors.", hidden=True)
]


def with_store(db: str | None, use: Callable[[Store, Config], Awaitable[T]]) -> T:
    """Run `use(store, config)` on the store of `--db` (or the config's), closed after."""
    import asyncio

    from sire.config import load_config
    from sire.storage import open_store

    config = load_config()

    async def main() -> T:
        store = await open_store(db or config.db_url, home=config.home)
        try:
            return await use(store, config)
        finally:
            await store.aclose()

    return asyncio.run(main())


def emit_json(document: Any) -> None:
    """Print `document` as the command's one JSON result."""
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")


def execution_document(execution: Execution, elapsed: float | None = None) -> dict[str, Any]:
    """The JSON shape of `execution`; outputs holding secrets show them as `***`."""
    from sire.secrets.redact import shown

    return {
        "execution_id": execution.id,
        "workflow_id": execution.workflow_id,
        "status": str(execution.status),
        "inputs": execution.inputs,
        "outputs": shown(execution.outputs),
        "error": execution.error,
        "workspace": execution.workspace,
        "created_at": execution.created_at,
        "updated_at": execution.updated_at,
        "duration_ms": None if elapsed is None else round(elapsed * 1000, 3),
        "steps": {
            key: {
                "status": str(state.status),
                "attempts": state.attempts,
                "output": shown(state.output),
                "error": state.error,
                "started_at": state.started_at,
                "finished_at": state.finished_at,
                **({"checkpoint": dict(state.checkpoint)} if state.checkpoint else {}),
                **({"mocked": True} if state.mocked else {}),
            }
            for key, state in execution.step_states.items()
        },
    }
