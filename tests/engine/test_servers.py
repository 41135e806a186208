"""Named servers' `headers` and `env` are templates, rendered once per run."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

from sire.dispatch.dispatcher import DispatchContext
from sire.dispatch.mux import DispatcherMux
from sire.engine.engine import Engine
from sire.model.execution import Execution, ExecutionStatus, new_execution_id
from sire.model.inputs import resolve_inputs
from sire.model.loader import parse_workflow
from sire.model.uri import ToolURI
from sire.model.workflow import ServerSpec
from sire.testing import MemoryStore

WORKFLOW = textwrap.dedent("""
    id: t
    inputs:
      tenant: {type: string, default: acme}
    servers:
      calc:
        url: http://127.0.0.1:1/mcp
        headers:
          Authorization: "Bearer {{ secrets.TOKEN }}"
          X-Tenant: "{{ inputs.tenant }}"
          X-Fixed: plain
      local:
        command: [calc-server]
        env: {HOME_DIR: "{{ env.HOME_DIR }}"}
    steps:
      - {id: look, tool: "mcp:calc#look"}
""")


class Recorder:
    """Stands in for the `mcp:` dispatcher: this test is about what the engine hands it."""

    def __init__(self) -> None:
        self.seen: list[DispatchContext] = []

    async def dispatch(
        self, ctx: DispatchContext, tool: ToolURI, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        self.seen.append(ctx)
        return {}

    def check(self, tool: ToolURI, servers: Mapping[str, ServerSpec]) -> None:
        return None

    async def aclose(self) -> None:
        return None


async def run(secrets: dict[str, str]) -> tuple[Execution, list[DispatchContext]]:
    recorder = Recorder()
    mux = DispatcherMux({"mcp": recorder}, entry_points=False)
    store = MemoryStore()
    engine = Engine(store, mux, secrets=secrets, env={"HOME_DIR": "/srv"})
    workflow = parse_workflow(WORKFLOW, source="t.yaml")
    execution = Execution(
        new_execution_id(), workflow.id, workflow.digest, inputs=resolve_inputs(workflow, {})
    )
    await store.create_execution(execution, workflow.text)
    return await engine.run(workflow, execution), recorder.seen


async def test_headers_and_env_are_rendered_with_secrets_inputs_and_env() -> None:
    done, (ctx,) = await run({"TOKEN": "s3cret"})
    assert done.status is ExecutionStatus.COMPLETED, done.error
    assert dict(ctx.servers["calc"].headers) == {
        "Authorization": "Bearer s3cret",
        "X-Tenant": "acme",
        "X-Fixed": "plain",
    }
    assert dict(ctx.servers["local"].env) == {"HOME_DIR": "/srv"}


async def test_an_unset_secret_fails_the_run_naming_the_server() -> None:
    done, seen = await run({})
    assert seen == []
    assert done.status is ExecutionStatus.FAILED
    assert done.error is not None
    assert done.error.startswith("servers: ")
    assert "secret 'TOKEN' is not set" in done.error
    assert "servers.calc.headers.Authorization" in done.error
