"""RemoteDispatcher against the SDK test server, over stdio and Streamable HTTP, in both eras."""

from __future__ import annotations

import asyncio
import re
import time
import uuid

import pytest

from sire.dispatch.remote import RemoteDispatcher
from sire.errors import ToolError, ToolInputError, ToolNotFoundError, TransportError
from sire.model.uri import ToolURI
from sire.model.workflow import ServerSpec

from .conftest import MODERN, HttpServer, Target, call, context, server_saw_cancellation

TRACEPARENT = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01\Z")


async def test_structured_content_is_the_output(remote: RemoteDispatcher, sdk: Target) -> None:
    assert await call(remote, sdk.spec, "add", {"a": 2, "b": 3}) == {"sum": 5}


async def test_json_object_in_a_single_text_block_is_the_output(
    remote: RemoteDispatcher, sdk: Target
) -> None:
    assert await call(remote, sdk.spec, "json_text") == {"city": "Paris", "celsius": 21}


async def test_plain_text_is_mapped_to_text_and_content(
    remote: RemoteDispatcher, sdk: Target
) -> None:
    assert await call(remote, sdk.spec, "shout", {"text": "hi"}) == {
        "text": "HI!",
        "content": [{"type": "text", "text": "HI!"}],
    }


async def test_is_error_fails_with_the_tools_own_message(
    remote: RemoteDispatcher, sdk: Target
) -> None:
    with pytest.raises(ToolError) as caught:
        await call(remote, sdk.spec, "fail", {"message": "disk full on /data"})
    assert "disk full on /data" in str(caught.value)
    assert "'fail'" in str(caught.value)
    assert caught.value.tool_uri == "mcp:sdk#fail"


async def test_output_that_breaks_its_output_schema_is_a_tool_error(
    remote: RemoteDispatcher, sdk: Target
) -> None:
    with pytest.raises(ToolError) as caught:
        await call(remote, sdk.spec, "bad_output")
    assert "bad_output" in str(caught.value)
    assert "\n" not in str(caught.value)


async def test_unknown_tool_is_not_found_and_lists_available_tools(
    remote: RemoteDispatcher, sdk: Target
) -> None:
    with pytest.raises(ToolNotFoundError) as caught:
        await call(remote, sdk.spec, "subtract", {"a": 1, "b": 2})
    assert "'subtract'" in str(caught.value)
    assert "add" in str(caught.value)
    assert not caught.value.retryable


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"a": 1}, "missing argument 'b'"),
        ({"a": 1, "b": "two"}, "argument 'b' must be integer"),
    ],
)
async def test_bad_arguments_are_rejected_before_anything_is_sent(
    remote: RemoteDispatcher, sdk: Target, params: dict[str, object], named: str
) -> None:
    before = (await call(remote, sdk.spec, "calls"))["calls"]
    with pytest.raises(ToolInputError) as caught:
        await call(remote, sdk.spec, "add", params)
    assert named in str(caught.value)
    assert not caught.value.retryable
    after = (await call(remote, sdk.spec, "calls"))["calls"]
    assert after == before + 1  # only the second `calls` reached the server


async def test_meta_carries_the_idempotency_key_and_a_new_traceparent(
    remote: RemoteDispatcher, sdk_any_era: Target
) -> None:
    out = await call(remote, sdk_any_era.spec, "meta", idempotency_key="exec-9/save/2")
    assert out["era"] == sdk_any_era.era
    assert out["meta"]["sire/idempotency-key"] == "exec-9/save/2"
    assert TRACEPARENT.match(out["meta"]["traceparent"])
    assert "tracestate" not in out["meta"]


async def test_meta_carries_the_callers_trace_context(
    remote: RemoteDispatcher, sdk: Target
) -> None:
    trace = {
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "tracestate": "sire=1",
    }
    out = await call(remote, sdk.spec, "meta", trace_context=trace)
    assert out["meta"]["traceparent"] == trace["traceparent"]
    assert out["meta"]["tracestate"] == "sire=1"


async def test_progress_notifications_reach_report_progress(
    remote: RemoteDispatcher, sdk_any_era: Target
) -> None:
    seen: list[tuple[float, float | None, str | None]] = []
    out = await call(
        remote,
        sdk_any_era.spec,
        "slow",
        {"seconds": 0},
        report_progress=lambda p, t, m: seen.append((p, t, m)),
    )
    assert out == {"slept": 0}
    assert seen == [(1, 2, "started"), (2, 2, "done")]


async def test_a_call_past_its_deadline_fails_in_time_cancels_the_tool_and_keeps_the_session(
    remote: RemoteDispatcher, sdk_any_era: Target
) -> None:
    spec = sdk_any_era.spec
    assert await call(remote, spec, "add", {"a": 1, "b": 1}) == {"sum": 2}  # connected
    token = uuid.uuid4().hex
    async with asyncio.timeout(10):  # the bound: the tool itself would sleep for a minute
        with pytest.raises(TransportError) as caught:
            await call(
                remote,
                spec,
                "slow",
                {"seconds": 60, "token": token},
                deadline=time.monotonic() + 0.3,
            )
    assert caught.value.retryable
    assert "did not answer 'slow'" in str(caught.value)
    # notifications/cancelled (2025 era, and stdio in 2026), or the closed request (HTTP 2026)
    assert await server_saw_cancellation(remote, spec, token)
    assert await call(remote, spec, "add", {"a": 2, "b": 2}) == {"sum": 4}


async def test_cancelling_the_awaiting_task_cancels_the_call_on_the_server(
    remote: RemoteDispatcher, sdk_any_era: Target
) -> None:
    spec = sdk_any_era.spec
    started = asyncio.Event()
    token = uuid.uuid4().hex
    task = asyncio.create_task(
        call(
            remote,
            spec,
            "slow",
            {"seconds": 60, "token": token},
            report_progress=lambda p, t, m: started.set(),
        )
    )
    async with asyncio.timeout(30):
        await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await server_saw_cancellation(remote, spec, token)
    assert await call(remote, spec, "add", {"a": 3, "b": 4}) == {"sum": 7}


async def test_concurrent_calls_share_one_session(remote: RemoteDispatcher, sdk: Target) -> None:
    results = await asyncio.gather(
        *(call(remote, sdk.spec, "add", {"a": i, "b": 1000}) for i in range(20))
    )
    assert results == [{"sum": i + 1000} for i in range(20)]
    pids = await asyncio.gather(*(call(remote, sdk.spec, "pid") for _ in range(20)))
    assert len({out["pid"] for out in pids}) == 1


async def test_url_form_reaches_the_server_over_streamable_http(
    remote: RemoteDispatcher, sdk_http: dict[str, HttpServer]
) -> None:
    url = sdk_http[MODERN].url
    tool = ToolURI.parse(f"mcp:{url}#add")
    async with asyncio.timeout(60):
        assert await remote.dispatch(context(), tool, {"a": 20, "b": 22}) == {"sum": 42}


async def test_the_workflows_named_server_wins_over_the_configured_one(sdk: Target) -> None:
    broken = ServerSpec(command=("sire-test-no-such-server",))
    remote = RemoteDispatcher({"sdk": broken, "calc": sdk.spec})
    try:
        async with asyncio.timeout(60):
            configured = ToolURI.parse("mcp:calc#add")
            assert await remote.dispatch(context(), configured, {"a": 1, "b": 2}) == {"sum": 3}
            # `sdk` is broken in the config but defined by the workflow: the workflow wins
            assert await call(remote, sdk.spec, "add", {"a": 2, "b": 2}) == {"sum": 4}
    finally:
        await remote.aclose()
