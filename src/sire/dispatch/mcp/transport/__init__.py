"""Fast MCP client transports: Streamable HTTP on aiohttp, stdio on asyncio pipes.

Above: the MCP SDK's `mcp.Client`, whose JSON-RPC dispatcher reads and writes
`SessionMessage`s through the (read, write) streams these transports yield, as the SDK's
own `streamable_http_client` and `stdio_client` do; the protocol (era negotiation,
validation, correlation) stays the SDK's. Below: one pooled, kept-alive
`aiohttp.ClientSession` per endpoint, or a server process on asyncio pipes.

What makes them fast is doing each message's I/O in the task that writes it: a request's
POST runs inside the caller's `send()` and puts its response on the read stream, instead
of crossing memory streams and spawned tasks (the SDK's HTTP transport), and a stdio
message is one `write()` on the pipe. Behaviour follows the SDK's transports: the same
headers (`Mcp-Session-Id`, `MCP-Protocol-Version`, per-message `Mcp-Method`/`Mcp-Name`),
JSON and SSE responses, SSE resumption with `Last-Event-ID`, the GET stream for
server-initiated messages and DELETE on close in the handshake era, and a stdio server
stopped by closing its stdin, then SIGTERM, then SIGKILL to its process group.

Parts: `streams` (the read and write streams the SDK sees), `http`, `stdio`. Imported
only once the SDK is loaded (it imports `mcp_types` and `anyio`).
"""

from sire.dispatch.mcp.transport.http import streamable_http
from sire.dispatch.mcp.transport.stdio import server_environment, stdio

__all__ = ["server_environment", "stdio", "streamable_http"]
