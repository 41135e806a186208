"""The client under test for the MCP conformance suite's client scenarios: Sire's own.

The suite (`conformance client --command "python client.py" --scenario NAME`) starts a
scenario server, then runs this script with the server's URL as the last argument and
the scenario's name in MCP_CONFORMANCE_SCENARIO. Whatever the scenario asks of a client
is done through `RemoteDispatcher`, Sire's real `mcp:` dispatcher (the MCP SDK's client
underneath), as a workflow step would: connect and list the tools, then call the tools
the scenario names. The suite judges what arrives at its server; this script exits
non-zero, with one line on stderr, when a call fails.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from sire.dispatch.dispatcher import DispatchContext
from sire.dispatch.remote import RemoteDispatcher
from sire.errors import SireError
from sire.model.uri import ToolURI

#: Bound on the whole scenario (the suite's own default timeout is 30 s).
SCENARIO_TIMEOUT = 25.0


def _context() -> DispatchContext:
    return DispatchContext(
        execution_id="conformance", step_id="step", idempotency_key="conformance/step"
    )


async def _call(remote: RemoteDispatcher, url: str, tool: str, params: dict[str, Any]) -> None:
    output = await remote.dispatch(_context(), ToolURI.parse(f"mcp:{url}#{tool}"), params)
    print(f"{tool}: {output}")


async def list_only(remote: RemoteDispatcher, url: str) -> None:
    """Connect (the handshake) and list the tools: all a client does before a call."""
    tools = await remote.list_tools(url)
    print(f"tools: {[tool['name'] for tool in tools]}")


async def call_add_numbers(remote: RemoteDispatcher, url: str) -> None:
    await list_only(remote, url)
    await _call(remote, url, "add_numbers", {"a": 5, "b": 3})


async def call_test_reconnection(remote: RemoteDispatcher, url: str) -> None:
    """The server closes the call's SSE stream; the answer arrives on the resumed stream."""
    await list_only(remote, url)
    await _call(remote, url, "test_reconnection", {})


async def call_elicitation_defaults(remote: RemoteDispatcher, url: str) -> None:
    await list_only(remote, url)
    await _call(remote, url, "test_client_elicitation_defaults", {})


SCENARIOS: dict[str, Callable[[RemoteDispatcher, str], Awaitable[None]]] = {
    "initialize": list_only,
    "tools_call": call_add_numbers,
    "sse-retry": call_test_reconnection,
    "elicitation-sep1034-client-defaults": call_elicitation_defaults,
}


async def run(scenario: str, url: str) -> None:
    remote = RemoteDispatcher(call_timeout=SCENARIO_TIMEOUT, connect_timeout=SCENARIO_TIMEOUT)
    try:
        async with asyncio.timeout(SCENARIO_TIMEOUT):
            await SCENARIOS[scenario](remote, url)
    finally:
        await remote.aclose()


def main(argv: list[str]) -> int:
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    if len(argv) < 2:
        print("usage: client.py SERVER_URL (scenario in MCP_CONFORMANCE_SCENARIO)", file=sys.stderr)
        return 2
    if scenario not in SCENARIOS:
        known = ", ".join(sorted(SCENARIOS))
        print(f"client.py: unknown scenario '{scenario}' (known: {known})", file=sys.stderr)
        return 2
    try:
        asyncio.run(run(scenario, argv[-1]))
    except SireError as exc:
        print(f"client.py: scenario '{scenario}': {exc}", file=sys.stderr)
        return 1
    except TimeoutError:
        print(
            f"client.py: scenario '{scenario}' did not finish within {SCENARIO_TIMEOUT:g} s",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
