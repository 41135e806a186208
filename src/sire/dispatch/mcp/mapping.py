"""How a Sire call maps onto MCP and back: `_meta`, argument checks, and result mapping.

Pure functions over SDK values; nothing here does I/O or imports the SDK at run time.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from sire.dispatch.dispatcher import DispatchContext, ignore_log
from sire.dispatch.toolschema import draft7

if TYPE_CHECKING:
    from mcp_types import CallToolResult, ContentBlock

log = logging.getLogger(__name__)

#: The `_meta` key carrying the idempotency key (DESIGN §4).
IDEMPOTENCY_KEY = "sire/idempotency-key"
#: The `_meta` key by which a request opts in to the server's log notifications, from
#: this level up (2026-07-28; handshake-era servers log to every session).
LOG_LEVEL = "io.modelcontextprotocol/logLevel"

Validator = Callable[[Any], Any]

_TRACEPARENT = re.compile(
    r"(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}\Z"
)
_REMOTE_REF = re.compile(r'"\$ref":\s*"(?!#)')


def new_traceparent() -> str:
    """A random, valid W3C `traceparent` (version 00, sampled; ids never all zero).

    Trace ids need to be unique, not secret: `random` (as OpenTelemetry's id generator
    uses) is several times cheaper than `secrets`, which costs two system calls.
    """
    trace_id = random.getrandbits(128) or 1
    span_id = random.getrandbits(64) or 1
    return f"00-{trace_id:032x}-{span_id:016x}-01"


def request_meta(ctx: DispatchContext) -> dict[str, Any]:
    """The `_meta` of a `tools/call`: the idempotency key and the W3C trace context.

    A missing or malformed `traceparent` is replaced by a random one; `tracestate` goes
    along only with the caller's own valid `traceparent`, as W3C requires.
    """
    meta: dict[str, Any] = {}
    if ctx.idempotency_key:
        meta[IDEMPOTENCY_KEY] = ctx.idempotency_key
    traceparent = ctx.trace_context.get("traceparent")
    if traceparent is not None and _TRACEPARENT.match(traceparent):
        meta["traceparent"] = traceparent
        tracestate = ctx.trace_context.get("tracestate")
        if tracestate:
            meta["tracestate"] = tracestate
    else:
        meta["traceparent"] = new_traceparent()
    if ctx.log is not ignore_log:  # 2026-07-28 servers log for a request only when asked
        meta[LOG_LEVEL] = "debug"
    return meta


def compile_arguments(schema: Mapping[str, Any], tool: str) -> Validator | None:
    """A validator for a tool's `inputSchema`, or None when the schema cannot be compiled.

    None leaves the check to the server: a schema fastjsonschema cannot read, or one with
    remote `$ref`s (compiling would fetch them), must not make a tool uncallable.
    """
    if _REMOTE_REF.search(json.dumps(schema)):
        return None
    import fastjsonschema

    try:
        # No defaults filled in (the server applies its own to what was sent) and no
        # `format` checks (an annotation unless the server says otherwise): the server
        # stays the authority, this only catches what it would certainly refuse.
        validate: Validator = fastjsonschema.compile(
            draft7(dict(schema)), use_default=False, use_formats=False
        )
    except Exception as exc:  # any schema the compiler rejects: the server still checks
        log.debug("sire.mcp.schema_not_compiled tool=%s error=%s", tool, exc)
        return None
    return validate


def argument_problem(exc: Exception) -> str:
    """Reword a fastjsonschema violation so that it names the argument.

    `data must contain ['b'] properties` becomes `missing argument 'b'`, and
    `data.a must be integer` becomes `argument 'a' must be integer`.
    """
    message: str = getattr(exc, "message", None) or str(exc)
    value = getattr(exc, "value", None)
    required = getattr(exc, "rule_definition", None)
    top_level_required = (
        getattr(exc, "name", None) == "data" and getattr(exc, "rule", None) == "required"
    )
    if top_level_required and isinstance(value, dict) and isinstance(required, list):
        missing = [name for name in required if name not in value]
        if missing:
            plural = "s" if len(missing) > 1 else ""
            return f"missing argument{plural} " + ", ".join(repr(name) for name in missing)
    if message.startswith("data."):
        name, _, rest = message[5:].partition(" ")
        return f"argument '{name}' {rest}"
    return f"arguments {message.removeprefix('data ')}"


def text_of(content: Sequence[ContentBlock]) -> str:
    """The text blocks of a result, joined by newlines."""
    return "\n".join(block.text for block in content if block.type == "text")


def output_of(result: CallToolResult) -> dict[str, Any]:
    """A step output from a successful `CallToolResult` (DESIGN §2).

    `structuredContent` when present (a non-object value, which 2026-07-28 allows, as
    `{"result": value}`); else a single text block holding a JSON object, as that object;
    else `{"text": <the text blocks joined>, "content": [<every block as a dict>]}`.
    """
    structured = result.structured_content
    if structured is not None:
        if isinstance(structured, dict):
            return cast(dict[str, Any], structured)
        return {"result": structured}
    content = result.content
    if len(content) == 1 and content[0].type == "text":
        text = content[0].text.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except ValueError:
                value = None
            if isinstance(value, dict):
                return value
    return {
        "text": text_of(content),
        "content": [
            block.model_dump(by_alias=True, mode="json", exclude_none=True) for block in content
        ],
    }
