"""`jsonrpc:` dispatch against a real JSON-RPC service over real sockets (jsonrpc_server.py)."""

from __future__ import annotations

import asyncio
import json
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from sire.cli.main import main
from sire.dispatch.dispatcher import DispatchContext, Dispatcher
from sire.dispatch.jsonrpc import JsonRpcDispatcher
from sire.errors import (
    DispatchError,
    ToolError,
    ToolInputError,
    ToolNotFoundError,
    TransportError,
)
from sire.model.uri import ToolURI

from .conftest import free_port

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
async def jsonrpc() -> AsyncIterator[JsonRpcDispatcher]:
    dispatcher = JsonRpcDispatcher()
    yield dispatcher
    await dispatcher.aclose()


def context(**fields: Any) -> DispatchContext:
    fields.setdefault("idempotency_key", "exec-1/step")
    return DispatchContext(execution_id="exec-1", step_id="step", **fields)


async def call(
    dispatcher: JsonRpcDispatcher,
    url: str,
    method: str,
    params: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Call `method` at `url`; bounded at 30 s."""
    async with asyncio.timeout(30):
        return await dispatcher.dispatch(
            context(**fields), ToolURI.parse(f"jsonrpc:{url}#{method}"), params or {}
        )


# Results -------------------------------------------------------------------------------


async def test_a_method_gets_the_params_by_name_and_its_object_result_is_the_output(
    jsonrpc: JsonRpcDispatcher, service: str
) -> None:
    assert await call(jsonrpc, service, "math.add", {"a": 2, "b": 3}) == {"sum": 5}
    nested = {"name": "Ada", "tags": ["x", "é"], "deep": {"n": None}}
    assert await call(jsonrpc, service, "echo", nested) == nested


@pytest.mark.parametrize("value", [42, 2.5, "text", [1, "two"], None, True])
async def test_a_result_that_is_not_an_object_is_wrapped_as_result(
    jsonrpc: JsonRpcDispatcher, service: str, value: Any
) -> None:
    assert await call(jsonrpc, service, "scalar", {"value": value}) == {"result": value}


async def test_each_call_has_its_own_id_and_carries_idempotency_key_and_trace_context(
    jsonrpc: JsonRpcDispatcher, service: str
) -> None:
    trace = {"traceparent": TRACEPARENT, "tracestate": "vendor=1"}
    first = await call(jsonrpc, service, "request", trace_context=trace)
    second = await call(jsonrpc, service, "request", idempotency_key="exec-1/step/3")
    assert first["id"] != second["id"]
    assert first["jsonrpc"] == "2.0"
    assert first["content_type"] == "application/json"
    assert first["idempotency_key"] == "exec-1/step"
    assert (first["traceparent"], first["tracestate"]) == (TRACEPARENT, "vendor=1")
    assert second["idempotency_key"] == "exec-1/step/3"
    # Without a caller's trace context, a fresh valid traceparent still goes along.
    assert second["traceparent"].startswith("00-")
    assert second["traceparent"] != TRACEPARENT
    assert second["tracestate"] is None


# JSON-RPC error objects ----------------------------------------------------------------


async def test_invalid_params_is_a_tool_input_error_naming_method_url_code_and_message(
    jsonrpc: JsonRpcDispatcher, service: str
) -> None:
    with pytest.raises(ToolInputError) as caught:
        await call(jsonrpc, service, "math.add", {"a": "two", "b": 3})
    assert str(caught.value) == (
        f"JSON-RPC method 'math.add' at {service} failed: "
        "-32602 Invalid params: a and b must be integers"
    )
    assert caught.value.tool_uri == f"jsonrpc:{service}#math.add"
    assert not caught.value.retryable


async def test_an_unknown_method_is_tool_not_found(
    jsonrpc: JsonRpcDispatcher, service: str
) -> None:
    with pytest.raises(ToolNotFoundError, match="-32601 Method not found") as caught:
        await call(jsonrpc, service, "no.such.method")
    assert not caught.value.retryable


@pytest.mark.parametrize(
    ("code", "kind", "retryable"),
    [
        (-32601, ToolNotFoundError, False),
        (-32602, ToolInputError, False),
        (-32700, ToolError, False),
        (-32600, ToolError, False),
        (-32603, ToolError, True),
        (-32000, ToolError, True),
        (42, ToolError, True),
    ],
)
async def test_error_objects_map_to_error_classes_with_code_message_and_data(
    jsonrpc: JsonRpcDispatcher, service: str, code: int, kind: type[DispatchError], retryable: bool
) -> None:
    params = {"code": code, "message": "It broke", "data": {"why": "because"}}
    with pytest.raises(kind) as caught:
        await call(jsonrpc, service, "fail", params)
    assert type(caught.value) is kind
    assert str(caught.value) == (
        f'JSON-RPC method \'fail\' at {service} failed: {code} It broke: {{"why": "because"}}'
    )
    assert caught.value.retryable is retryable


# HTTP statuses and bodies --------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 429])
async def test_http_5xx_and_429_are_retryable_transport_errors(
    jsonrpc: JsonRpcDispatcher, service: str, status: int
) -> None:
    with pytest.raises(TransportError, match=f"with HTTP {status} .*: overloaded") as caught:
        await call(jsonrpc, service, "status", {"status": status, "body": "overloaded"})
    assert caught.value.retryable


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_other_http_4xx_are_tool_errors_that_are_not_retried(
    jsonrpc: JsonRpcDispatcher, service: str, status: int
) -> None:
    with pytest.raises(ToolError, match=f"refused 'status' with HTTP {status} .*: nope") as caught:
        await call(jsonrpc, service, "status", {"status": status, "body": "nope"})
    assert not caught.value.retryable


async def test_a_4xx_carrying_an_error_object_maps_the_error_object(
    jsonrpc: JsonRpcDispatcher, service: str
) -> None:
    body = {"jsonrpc": "2.0", "id": None, "error": {"code": -32601, "message": "No method"}}
    with pytest.raises(ToolNotFoundError, match="-32601 No method"):
        await call(jsonrpc, service, "status", {"status": 404, "json": body})


async def test_redirects_are_not_followed(jsonrpc: JsonRpcDispatcher, service: str) -> None:
    with pytest.raises(ToolError, match="redirects are not followed") as caught:
        await call(jsonrpc, service, "status", {"status": 307})
    assert not caught.value.retryable


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("<html>oops</html>", "a body that is not JSON: <html>oops</html>"),
        ("", "no body"),
        ('{"jsonrpc": "2.0", "id": 999999999, "result": {}}', "other than its JSON-RPC"),
        ('[{"jsonrpc": "2.0", "id": 1, "result": {}}]', "other than its JSON-RPC"),
        ('{"jsonrpc": "2.0"}', "other than its JSON-RPC"),
    ],
)
async def test_a_body_that_is_not_the_json_rpc_response_is_a_transport_error(
    jsonrpc: JsonRpcDispatcher, service: str, body: str, problem: str
) -> None:
    with pytest.raises(TransportError) as caught:
        await call(jsonrpc, service, "raw", {"body": body})
    assert problem in str(caught.value)
    assert caught.value.retryable
    # The connection went back to the pool, or was replaced: the next call works.
    assert await call(jsonrpc, service, "math.add", {"a": 1, "b": 1}) == {"sum": 2}


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_response_over_the_size_limit_fails_and_one_under_it_passes(
    service: str, chunked: bool
) -> None:
    dispatcher = JsonRpcDispatcher(max_response_bytes=64 * 1024)
    try:
        small = await call(dispatcher, service, "big", {"size": 60_000, "chunked": chunked})
        assert len(small["blob"]) == 60_000
        with pytest.raises(ToolError) as caught:
            await call(dispatcher, service, "big", {"size": 200_000, "chunked": chunked})
        assert "with more than 64 KiB, the largest response Sire reads" in str(caught.value)
        assert not caught.value.retryable
        assert await call(dispatcher, service, "math.add", {"a": 1, "b": 2}) == {"sum": 3}
    finally:
        await dispatcher.aclose()


# Reaching the service ------------------------------------------------------------------


async def test_a_refused_connection_is_a_transport_error(jsonrpc: JsonRpcDispatcher) -> None:
    url = f"http://127.0.0.1:{free_port()}/rpc"
    with pytest.raises(TransportError) as caught:
        await call(jsonrpc, url, "math.add", {"a": 1, "b": 2})
    assert str(caught.value).startswith(f"cannot reach JSON-RPC service at {url}: ")
    assert "refused" in str(caught.value).lower()
    assert caught.value.retryable


async def test_a_hung_service_fails_the_call_at_its_deadline(
    jsonrpc: JsonRpcDispatcher, service: str
) -> None:
    token = uuid4().hex
    deadline = time.monotonic() + 0.3
    with pytest.raises(TransportError, match=r"did not answer 'hang' within 0\.\d+ s") as caught:
        await call(jsonrpc, service, "hang", {"token": token}, deadline=deadline)
    assert caught.value.retryable
    assert await _seen(jsonrpc, service, token, "cancelled")


async def test_a_call_without_deadline_is_bounded_by_the_default_timeout(service: str) -> None:
    dispatcher = JsonRpcDispatcher(call_timeout=0.2)
    try:
        with pytest.raises(TransportError, match=r"did not answer 'hang' within 0\.2 s"):
            await call(dispatcher, service, "hang", {"token": uuid4().hex})
    finally:
        await dispatcher.aclose()


async def test_cancelling_a_call_closes_its_request(
    jsonrpc: JsonRpcDispatcher, service: str
) -> None:
    token = uuid4().hex
    task = asyncio.create_task(call(jsonrpc, service, "hang", {"token": token}))
    assert await _seen(jsonrpc, service, token, "started")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _seen(jsonrpc, service, token, "cancelled")
    assert await call(jsonrpc, service, "math.add", {"a": 1, "b": 2}) == {"sum": 3}


async def test_parallel_calls_run_at_once_and_share_kept_alive_connections(
    jsonrpc: JsonRpcDispatcher, service: str
) -> None:
    n = 20

    async def batch() -> set[int]:
        token = uuid4().hex
        params = {"token": token, "n": n}
        outputs = await asyncio.gather(
            *(call(jsonrpc, service, "gather", params) for _ in range(n))
        )
        return {output["peer"] for output in outputs}

    # The service answers only once all n calls are in flight: they ran concurrently.
    first = await batch()
    assert len(first) == n
    assert await batch() <= first  # the second batch reused the first one's connections
    sums = await asyncio.gather(
        *(call(jsonrpc, service, "math.add", {"a": i, "b": i}) for i in range(200))
    )
    assert [output["sum"] for output in sums] == [2 * i for i in range(200)]


async def _seen(dispatcher: JsonRpcDispatcher, url: str, token: str, what: str) -> bool:
    """Whether the service reports `what` (started, cancelled) for `token` within 10 s."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if (await call(dispatcher, url, "probe", {"token": token}))[what]:
            return True
        await asyncio.sleep(0.02)
    return False


# URIs, params, pools -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("jsonrpc:calc#math.add", "must be an http:// or https:// URL"),
        ("jsonrpc:ftp://host/rpc#math.add", "must be an http:// or https:// URL"),
        ("jsonrpc:http://host:99999/rpc#math.add", "URL is invalid"),
        ("jsonrpc:http:///rpc#math.add", "has no host"),
    ],
)
def test_check_refuses_what_is_not_an_http_url_offline(uri: str, problem: str) -> None:
    with pytest.raises(ToolNotFoundError, match=problem) as caught:
        JsonRpcDispatcher().check(ToolURI.parse(uri), {})
    assert caught.value.tool_uri == uri


def test_check_accepts_http_and_https_urls_offline() -> None:
    dispatcher = JsonRpcDispatcher()
    assert isinstance(dispatcher, Dispatcher)
    for uri in ("jsonrpc:http://host/rpc#math.add", "jsonrpc:https://u:p@host:8443/#m"):
        dispatcher.check(ToolURI.parse(uri), {})


async def test_params_that_are_not_json_are_an_input_error(
    jsonrpc: JsonRpcDispatcher, service: str
) -> None:
    with pytest.raises(ToolInputError, match="the params are not JSON"):
        await call(jsonrpc, service, "echo", {"x": float("nan")})


async def test_messages_mask_credentials_in_the_url(jsonrpc: JsonRpcDispatcher) -> None:
    url = f"http://user:secret@127.0.0.1:{free_port()}/rpc"
    with pytest.raises(TransportError) as caught:
        await call(jsonrpc, url, "echo")
    assert "secret" not in str(caught.value)
    assert "***@127.0.0.1" in str(caught.value)


async def test_a_closed_dispatcher_opens_a_new_pool_on_its_next_call(service: str) -> None:
    dispatcher = JsonRpcDispatcher()
    assert await call(dispatcher, service, "math.add", {"a": 1, "b": 2}) == {"sum": 3}
    await dispatcher.aclose()
    try:
        assert await call(dispatcher, service, "math.add", {"a": 2, "b": 2}) == {"sum": 4}
    finally:
        await dispatcher.aclose()


def test_one_dispatcher_serves_successive_event_loops(service: str) -> None:
    dispatcher = JsonRpcDispatcher()

    async def add(a: int, close: bool) -> dict[str, Any]:
        try:
            return await call(dispatcher, service, "math.add", {"a": a, "b": 1})
        finally:
            if close:
                await dispatcher.aclose()

    assert asyncio.run(add(1, close=True)) == {"sum": 2}
    # A pool whose loop ended without `aclose` is dropped, never used from another loop.
    assert asyncio.run(add(2, close=False)) == {"sum": 3}
    assert asyncio.run(add(3, close=True)) == {"sum": 4}


# Through the command line --------------------------------------------------------------


def sire(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def workflow(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "wf.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_a_workflow_mixes_builtin_and_jsonrpc_steps_with_templated_references(
    service: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = workflow(
        tmp_path,
        f"""
        id: mixed
        inputs:
          a: {{type: integer, default: 2}}
        steps:
          - id: first
            tool: sire:local/echo
            with: {{a: "{{{{ inputs.a }}}}", b: 40}}
          - id: add
            tool: "jsonrpc:{service}#math.add"
            with: {{a: "{{{{ steps.first.output.a }}}}", b: "{{{{ steps.first.output.b }}}}"}}
          - id: wrap
            tool: "jsonrpc:{service}#scalar"
            with: {{value: "{{{{ steps.add.output.sum }}}}"}}
          - id: last
            tool: sire:local/echo
            with: {{total: "{{{{ steps.wrap.output.result }}}}"}}
        outputs:
          total: "{{{{ steps.last.output.total }}}}"
        """,
    )
    code, out, err = sire(capsys, "workflow", "validate", str(path))
    assert code == 0, err
    code, out, err = sire(capsys, "run", str(path), "-i", "a=2", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["status"] == "completed"
    assert doc["steps"]["add"]["output"] == {"sum": 42}
    assert doc["steps"]["wrap"]["output"] == {"result": 42}
    assert doc["outputs"] == {"total": 42}


def test_a_jsonrpc_step_with_retry_recovers_after_the_service_fails_once(
    service: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = workflow(
        tmp_path,
        f"""
        id: flaky
        steps:
          - id: call
            tool: "jsonrpc:{service}#flaky"
            with: {{token: "{uuid4().hex}", failures: 1, status: 503}}
            retry: {{max_attempts: 3, initial_interval: 10ms}}
        """,
    )
    code, out, err = sire(capsys, "run", str(path), "--json")
    assert code == 0, err
    step = json.loads(out)["steps"]["call"]
    assert step["status"] == "completed"
    assert step["attempts"] == 2
    assert step["output"] == {"attempts": 2}


def test_a_failed_jsonrpc_step_fails_the_run_with_the_service_message(
    service: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = workflow(
        tmp_path,
        f"""
        id: bad-args
        steps:
          - id: add
            tool: "jsonrpc:{service}#math.add"
            with: {{a: one, b: 2}}
            retry: {{max_attempts: 3, initial_interval: 10ms}}
        """,
    )
    code, out, err = sire(capsys, "run", str(path), "--json")
    assert code == 1, err
    step = json.loads(out)["steps"]["add"]
    assert step["status"] == "failed"
    assert step["attempts"] == 1  # invalid params are not retried
    assert "-32602 Invalid params: a and b must be integers" in step["error"]


@pytest.mark.parametrize(
    ("tool", "problem"),
    [
        ("jsonrpc:calc#math.add", "must be an http:// or https:// URL"),
        ("jsonrpc:ftp://host/rpc#math.add", "must be an http:// or https:// URL"),
    ],
)
def test_validate_reports_a_jsonrpc_tool_that_is_not_an_http_url_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tool: str, problem: str
) -> None:
    path = workflow(
        tmp_path,
        f"""
        id: bad-url
        steps:
          - id: add
            tool: "{tool}"
        """,
    )
    code, out, _ = sire(capsys, "workflow", "validate", str(path), "--json")
    assert code == 2
    error = json.loads(out)["files"][0]["error"]
    assert error["line"] == 5
    assert problem in error["reason"]
