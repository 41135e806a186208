"""`http.request`: one HTTP call, limited to the hosts config.yaml allows."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

from sire.errors import ToolError, TransportError

if TYPE_CHECKING:
    import httpx

    from sire.dispatch.inprocess import InProcessServer
    from sire.tools import ToolSettings

_METHOD = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


class _Response(TypedDict):
    status: int
    headers: dict[str, str]
    text: str


class HttpResponse(_Response, total=False):
    """The response: status, headers (lower-case names), body text, and `json` when it is JSON."""

    json: Any


def host_allowed(host: str, allowed: Sequence[str] | None) -> bool:
    """Whether `host` matches an exact name or a `*.suffix` pattern in `allowed` (None: any).

    `*.example.com` matches `api.example.com`, not `example.com` itself.
    """
    if allowed is None:
        return True
    host = host.lower().rstrip(".")
    for pattern in allowed:
        pattern = pattern.lower().rstrip(".")
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif host == pattern:
            return True
    return False


def request_tool(settings: ToolSettings) -> Callable[..., Awaitable[HttpResponse]]:
    """The `http.request` tool, confined to `settings.http_allow_hosts`."""

    def check(url: httpx.URL) -> None:
        if url.scheme not in ("http", "https"):
            raise ToolError(f"http.request: {str(url)!r} is not an http or https URL")
        if not url.host:
            raise ToolError(f"http.request: {str(url)!r} has no host")
        if not host_allowed(url.host, settings.http_allow_hosts):
            raise ToolError(
                f"http.request: host '{url.host}' is not allowed;"
                " add it to http.allow_hosts in $SIRE_HOME/config.yaml"
            )

    async def http_request(
        url: str,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        body: str | None = None,
        json: Any = None,
        timeout: float = 30.0,  # noqa: ASYNC109 (a tool argument, given to httpx)
    ) -> HttpResponse:
        """Send an HTTP request and return the response; a 4xx or 5xx status is not an error.

        Args:
            url: an http or https URL.
            method: the HTTP method.
            headers: request headers.
            body: the request body as text; not with `json`.
            json: a JSON value sent as the body (with content-type application/json).
            timeout: seconds to wait for connecting, and for each read or write.
        """
        import httpx

        if not _METHOD.fullmatch(method):
            raise ToolError(f"http.request: {method!r} is not an HTTP method")
        if body is not None and json is not None:
            raise ToolError("http.request: give `body` or `json`, not both")
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise ToolError(f"http.request: {url!r} is not a valid URL: {exc}") from None
        check(parsed)
        # Errors are stored with the execution: never repeat a password from the URL.
        shown = str(parsed.copy_with(userinfo=b"")) if parsed.userinfo else url

        async def check_hop(request: httpx.Request) -> None:
            check(request.url)  # every redirect too

        limit = settings.max_output_bytes
        # One client per call keeps calls independent; a shared pool would save
        # connection set-up for workflows that call one host many times.
        async with httpx.AsyncClient(
            follow_redirects=True,
            timeout=httpx.Timeout(timeout),
            event_hooks={"request": [check_hop]},
        ) as client:
            try:
                async with client.stream(
                    method.upper(), parsed, headers=headers, content=body, json=json
                ) as response:
                    content = await _read_capped(response, limit)
            except httpx.UnsupportedProtocol as exc:
                raise ToolError(f"http.request: {shown!r} cannot be fetched: {exc}") from None
            except httpx.TransportError as exc:
                raise TransportError(
                    f"http.request: {method.upper()} {shown} failed: {_reason(exc)}"
                ) from exc
            except httpx.HTTPError as exc:
                raise ToolError(
                    f"http.request: {method.upper()} {shown} failed: {_reason(exc)}"
                ) from exc
        if content is None:
            raise ToolError(f"http.request: the response from {shown} is over {limit} bytes")
        text = content.decode(response.encoding or "utf-8", errors="replace")
        result: HttpResponse = {
            "status": response.status_code,
            "headers": dict(response.headers.items()),
            "text": text,
        }
        if _is_json(response.headers.get("content-type", "")):
            import json as jsonlib

            with contextlib.suppress(ValueError):  # mislabelled: the text is still there
                result["json"] = jsonlib.loads(text)
        return result

    return http_request


async def _read_capped(response: httpx.Response, limit: int) -> bytes | None:
    """The body, or None as soon as it grows past `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def register(server: InProcessServer, settings: ToolSettings) -> None:
    """Register `http.request` on `server`."""
    server.add_tool(request_tool(settings), name="http.request")
