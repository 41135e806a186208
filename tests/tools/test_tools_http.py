"""http.request against a real HTTP server on 127.0.0.1, in a thread."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from sire.errors import ToolError, ToolInputError, TransportError
from sire.tools import ToolSettings

Call = Callable[..., Awaitable[dict[str, Any]]]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    release: threading.Event


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def do_DELETE(self) -> None:
        self._route()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _route(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        path, _, query = self.path.partition("?")
        if path == "/json":
            self._send(200, b'{"ok": true, "n": [1, 2]}', "application/json; charset=utf-8")
        elif path == "/problem":
            self._send(422, b'{"error": "bad"}', "application/problem+json")
        elif path == "/echo":
            seen = {
                "method": self.command,
                "body": body.decode(),
                "headers": {k.lower(): v for k, v in self.headers.items()},
            }
            self._send(200, json.dumps(seen).encode(), "application/json")
        elif path == "/missing":
            self._send(404, b"no such page", "text/plain")
        elif path == "/mislabelled":
            self._send(200, b"<html>not json</html>", "application/json")
        elif path == "/latin":
            self._send(200, "café".encode("latin-1"), "text/plain; charset=latin-1")
        elif path == "/big":
            self._send(200, b"x" * 1000, "text/plain")
        elif path == "/redirect":
            self.send_response(302)
            self.send_header("Location", query.removeprefix("to="))
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/hang":
            self.server.release.wait(10)
        else:
            self._send(500, b"unknown route", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Test", "yes")
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The base URL of a local server with the routes above, shared by this module's tests."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
            patch.delenv(name, raising=False)
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.release = threading.Event()
        thread = threading.Thread(
            target=httpd.serve_forever, args=(0.05,), name="http-test-server", daemon=True
        )
        thread.start()
        yield f"http://127.0.0.1:{httpd.server_port}"
        httpd.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


async def test_http_request_returns_status_headers_text_and_json(call: Call, server: str) -> None:
    result = await call("http.request", {"url": f"{server}/json"})

    assert result["status"] == 200
    assert result["headers"]["content-type"] == "application/json; charset=utf-8"
    assert result["headers"]["x-test"] == "yes"
    assert result["text"] == '{"ok": true, "n": [1, 2]}'
    assert result["json"] == {"ok": True, "n": [1, 2]}


async def test_http_request_sends_method_headers_and_json_body(call: Call, server: str) -> None:
    result = await call(
        "http.request",
        {
            "url": f"{server}/echo",
            "method": "post",
            "headers": {"X-Token": "t0k"},
            "json": {"a": [1, None]},
        },
    )

    seen = result["json"]
    assert seen["method"] == "POST"
    assert json.loads(seen["body"]) == {"a": [1, None]}
    assert seen["headers"]["x-token"] == "t0k"
    assert seen["headers"]["content-type"] == "application/json"


async def test_http_request_sends_a_text_body(call: Call, server: str) -> None:
    result = await call(
        "http.request", {"url": f"{server}/echo", "method": "DELETE", "body": "plain words"}
    )

    assert result["json"]["method"] == "DELETE"
    assert result["json"]["body"] == "plain words"


async def test_http_request_returns_an_error_status_instead_of_failing(
    call: Call, server: str
) -> None:
    result = await call("http.request", {"url": f"{server}/missing"})

    assert result["status"] == 404
    assert result["text"] == "no such page"
    assert "json" not in result


async def test_http_request_parses_json_media_types_with_a_suffix(call: Call, server: str) -> None:
    result = await call("http.request", {"url": f"{server}/problem"})

    assert result["status"] == 422
    assert result["json"] == {"error": "bad"}


async def test_http_request_leaves_out_json_that_does_not_parse(call: Call, server: str) -> None:
    result = await call("http.request", {"url": f"{server}/mislabelled"})

    assert result["text"] == "<html>not json</html>"
    assert "json" not in result


async def test_http_request_decodes_text_with_the_declared_charset(call: Call, server: str) -> None:
    result = await call("http.request", {"url": f"{server}/latin"})

    assert result["text"] == "café"


async def test_http_request_follows_redirects_to_allowed_hosts(call: Call, server: str) -> None:
    result = await call("http.request", {"url": f"{server}/redirect?to={server}/json"})

    assert result["json"] == {"ok": True, "n": [1, 2]}


async def test_http_request_refuses_a_host_outside_the_allow_list(call: Call) -> None:
    settings = ToolSettings(http_allow_hosts=("api.example.com", "*.example.org"))

    with pytest.raises(ToolError, match=r"host 'evil\.test' is not allowed") as caught:
        await call("http.request", {"url": "http://evil.test/x"}, settings)

    assert "http.allow_hosts" in str(caught.value)


async def test_http_request_refuses_a_redirect_to_a_host_outside_the_allow_list(
    call: Call, server: str
) -> None:
    port = server.rsplit(":", 1)[1]
    settings = ToolSettings(http_allow_hosts=("127.0.0.1",))

    with pytest.raises(ToolError, match="host 'localhost' is not allowed"):
        await call(
            "http.request",
            {"url": f"{server}/redirect?to=http://localhost:{port}/json"},
            settings,
        )


async def test_http_request_allows_a_host_matching_a_wildcard(call: Call, server: str) -> None:
    settings = ToolSettings(http_allow_hosts=("*.invalid", "127.0.0.1"))

    result = await call("http.request", {"url": f"{server}/json"}, settings)

    assert result["status"] == 200


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("api.example.org", True),
        ("a.b.example.org", True),
        ("API.Example.ORG.", True),
        ("example.org", False),
        ("badexample.org", False),
        ("api.example.com", True),
        ("x.api.example.com", False),
    ],
)
def test_host_allow_list_matches_exact_names_and_wildcard_suffixes(
    host: str, allowed: bool
) -> None:
    from sire.tools.http import host_allowed

    assert host_allowed(host, ("api.example.com", "*.example.org")) is allowed


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "no scheme"])
async def test_http_request_refuses_urls_that_are_not_http(call: Call, url: str) -> None:
    with pytest.raises(ToolError, match=r"^http\.request: "):
        await call("http.request", {"url": url})


async def test_http_request_refuses_body_and_json_together(call: Call, server: str) -> None:
    with pytest.raises(ToolError, match="not both"):
        await call("http.request", {"url": f"{server}/echo", "body": "a", "json": {"b": 1}})


async def test_http_request_refuses_a_response_over_the_output_limit(
    call: Call, server: str
) -> None:
    with pytest.raises(ToolError, match="over 100 bytes"):
        await call("http.request", {"url": f"{server}/big"}, ToolSettings(max_output_bytes=100))


async def test_http_request_refusal_of_a_connection_is_a_retryable_transport_error(
    call: Call,
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the request: nobody listens

    with pytest.raises(TransportError) as caught:
        await call("http.request", {"url": f"http://127.0.0.1:{port}/"})

    assert caught.value.retryable is True
    assert caught.value.tool_uri == "sire:local/http.request"


async def test_http_request_timeout_is_a_transport_error(call: Call, server: str) -> None:
    with pytest.raises(TransportError, match="failed"):
        await call("http.request", {"url": f"{server}/hang", "timeout": 0.05})


async def test_http_request_headers_must_be_strings(call: Call, server: str) -> None:
    with pytest.raises(ToolInputError, match="headers"):
        await call("http.request", {"url": f"{server}/json", "headers": {"X-N": 1}})


async def test_http_request_refuses_a_malformed_method(call: Call, server: str) -> None:
    with pytest.raises(ToolError, match="is not an HTTP method"):
        await call("http.request", {"url": f"{server}/echo", "method": "GET /x HTTP/1.1\r\n"})


async def test_http_request_errors_do_not_repeat_a_password_from_the_url(call: Call) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    with pytest.raises(TransportError) as caught:
        await call("http.request", {"url": f"http://user:hunter2@127.0.0.1:{port}/"})

    assert "hunter2" not in str(caught.value)
