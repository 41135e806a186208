"""The read and write streams an SDK client sees, and JSON-RPC message helpers."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self

import anyio
from mcp.shared.message import SessionMessage
from mcp_types import (
    ErrorData,
    JSONRPCError,
    JSONRPCResponse,
    RequestId,
    jsonrpc_message_adapter,
)

log = logging.getLogger(__name__)


class ReadStream:
    """The messages a transport received, in order, for the SDK's dispatcher to read.

    A deque and one waiter: cheaper than anyio's memory streams, with their contract —
    iteration ends (`EndOfStream` from `receive`) once the transport ends it and it is
    drained, and `ClosedResourceError` once the reader closed it. After a message that is
    not a response (a progress notification, say), the next `receive` lets the event loop
    run once: the dispatcher hands such messages to tasks it spawns, which must run before
    a response that arrived with them lets the call return.
    """

    last_context: None = None  # the dispatcher looks for a sender's context here

    def __init__(self) -> None:
        self._items: deque[SessionMessage | Exception] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._ended = False
        self._closed = False
        self._handed_off = False

    def put(self, item: SessionMessage | Exception) -> None:
        if self._ended or self._closed:
            return
        self._items.append(item)
        self._wake()

    def end(self) -> None:
        """No more messages will come: the reader gets those left, then end of stream."""
        self._ended = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def receive(self) -> SessionMessage | Exception:
        if self._handed_off:
            self._handed_off = False
            await asyncio.sleep(0)
        while not self._items:
            if self._closed:
                raise anyio.ClosedResourceError
            if self._ended:
                raise anyio.EndOfStream
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = self._items.popleft()
        if isinstance(item, SessionMessage) and not isinstance(
            item.message, JSONRPCResponse | JSONRPCError
        ):
            self._handed_off = True
        return item

    async def aclose(self) -> None:
        self._closed = True
        self._items.clear()
        self._wake()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class WriteStream:
    """The SDK's write stream: each `send` does the message's I/O in the sender's task."""

    def __init__(self, send: Callable[[SessionMessage], Awaitable[None]]) -> None:
        self._send = send
        self.closed = False

    async def send(self, item: SessionMessage, /) -> None:
        if self.closed:
            raise anyio.ClosedResourceError
        await self._send(item)

    async def aclose(self) -> None:
        self.closed = True

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def parse_message(data: bytes | str) -> SessionMessage | Exception:
    """One JSON-RPC message; a malformed one is returned for the dispatcher to report."""
    try:
        return SessionMessage(jsonrpc_message_adapter.validate_json(data, by_name=False))
    except ValueError as exc:
        log.warning("sire.mcp.bad_message error=%s", str(exc).partition("\n")[0])
        return exc


def error_message(request_id: RequestId, code: int, message: str) -> SessionMessage:
    return SessionMessage(
        JSONRPCError(jsonrpc="2.0", id=request_id, error=ErrorData(code=code, message=message))
    )
