"""Dispatch: how a step's tool call reaches its tool.

The engine holds one `Dispatcher` (usually a `DispatcherMux`) and calls
`dispatch(ctx, tool, params)`. The mux routes by URI scheme: `sire:` to the
in-process server of built-in tools; other schemes to their dispatchers, including
third-party ones registered in the `sire.dispatchers` entry-point group.
"""
