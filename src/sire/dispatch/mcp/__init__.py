"""The MCP client behind `RemoteDispatcher` (`sire.dispatch.remote`).

`endpoint` and `mapping` are light and pure; `session` holds the live connections and
is the only module that touches the MCP SDK, which it imports on the first connect.
"""
