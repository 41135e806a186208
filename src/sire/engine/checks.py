"""What the engine checks around each tool call: a step's own schemas and the payload limit.

A step's `input_schema` is checked against its rendered parameters before the call and
its `output_schema` against the output after it (per item, for `for_each`); an output
larger than `limits.max_payload_bytes` as JSON fails the step too. Each failure is
deterministic, so it is raised as a non-retryable `DispatchError` naming the step and,
for schemas, the JSON path of the offending value. Schemas are compiled once per
workflow (`compile_checks`, called from `Engine.compile`); a step with no schema costs
nothing, and without a limit neither does its output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from sire.errors import ToolError, ToolInputError
from sire.model.workflow import Step

Validator = Callable[[Any], Any]

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
_PART = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class StepChecks:
    """A step's compiled checks: `params` before each call, `output` after it.

    Steps without schemas share one instance per limit, so the checks know nothing of
    their step: each method is given it, and names it only in a failure.
    """

    __slots__ = ("broken", "check_input", "check_output", "limit")

    def __init__(
        self,
        check_input: Validator | None,
        check_output: Validator | None,
        limit: int | None,
        broken: str | None = None,
    ) -> None:
        self.check_input = check_input
        self.check_output = check_output
        self.limit = limit
        self.broken = broken  # why a schema did not compile

    def params(self, step: Step, params: Mapping[str, Any]) -> None:
        """Check the rendered parameters against the step's `input_schema`.

        Raises:
            ToolInputError: they do not match (not retryable).
        """
        if self.broken is not None:
            raise ToolInputError(f"steps.{step.id}: {self.broken}", tool_uri=str(step.tool))
        if self.check_input is None:
            return
        try:
            self.check_input(params)
        except Exception as exc:  # fastjsonschema's JsonSchemaValueException
            raise ToolInputError(
                f"steps.{step.id}: params do not match input_schema {violation(exc)}",
                tool_uri=str(step.tool),
            ) from None

    def output(self, step: Step, output: Any) -> None:
        """Check an output against the step's `output_schema` and the payload limit.

        Raises:
            ToolError: it does not match, or is too large (not retryable).
        """
        limit = self.limit
        if limit is not None and not _fits(output, limit):
            too_big = self.size(step, output)
            if too_big is not None:
                raise ToolError(too_big, tool_uri=str(step.tool), retryable=False)
        if self.check_output is not None:
            try:
                self.check_output(output)
            except Exception as exc:
                raise ToolError(
                    f"steps.{step.id}: output does not match output_schema {violation(exc)}",
                    tool_uri=str(step.tool),
                    retryable=False,
                ) from None

    def size(self, step: Step, output: Any) -> str | None:
        """Why `output` is over the payload limit, or None when it is not (or none is set)."""
        if self.limit is None:
            return None
        problem = payload_problem(output, self.limit)
        return None if problem is None else f"steps.{step.id}: output is {problem}"


def compile_checks(step: Step, max_payload_bytes: int | None) -> StepChecks | None:
    """The checks of `step`, or None when it has none (no schema, no limit).

    A schema that does not compile (the loader refuses them; a definition cached by an
    older Sire may hold one) fails the step when it runs, not the whole run.
    """
    if step.input_schema is None and step.output_schema is None:
        return limit_checks(max_payload_bytes)
    validators: list[Validator | None] = []
    for field in ("input_schema", "output_schema"):
        schema = getattr(step, field)
        try:
            validators.append(None if schema is None else compile_schema(schema))
        except ValueError as exc:
            broken = f"{field} is not a valid JSON Schema ({exc})"
            return StepChecks(None, None, max_payload_bytes, broken)
    return StepChecks(validators[0], validators[1], max_payload_bytes)


@lru_cache(maxsize=8)
def limit_checks(max_payload_bytes: int | None) -> StepChecks | None:
    """The checks of every step without schemas: the payload limit, or None without one."""
    return None if max_payload_bytes is None else StepChecks(None, None, max_payload_bytes)


def compile_schema(schema: Mapping[str, Any]) -> Validator:
    """A validator for a JSON Schema a workflow declares (drafts 4 to 7, and 2020-12 tuples).

    It checks, and never fills in defaults: a checked value is left as it was.

    Raises:
        ValueError: the schema is invalid, or refers to another document (`$ref` by URL).
    """
    import fastjsonschema

    from sire.dispatch.toolschema import draft7

    if re.search(r'"\$ref":\s*"(?!#)', json.dumps(schema)):
        raise ValueError("a $ref to another document is not supported (use #/$defs/...)")
    try:
        validate: Validator = fastjsonschema.compile(draft7(dict(schema)), use_default=False)
    except Exception as exc:  # JsonSchemaDefinitionException, or a TypeError on a malformed one
        raise ValueError(str(exc) or type(exc).__name__) from None
    return validate


def violation(exc: Exception) -> str:
    """`at $.path: what is wrong` from a fastjsonschema violation."""
    name: str = getattr(exc, "name", None) or "data"
    message: str = getattr(exc, "message", None) or str(exc)
    problem = message.removeprefix(name).strip()
    value = getattr(exc, "value", None)
    if getattr(exc, "rule", None) == "required" and isinstance(value, dict):
        required = getattr(exc, "rule_definition", None) or []
        missing = [key for key in required if key not in value]
        if missing:
            problem = "missing " + ", ".join(repr(key) for key in missing)
    elif isinstance(value, bool | int | float) or value is None:
        problem += f", got {json.dumps(value)}"
    elif isinstance(value, str) and len(value) <= 40:
        problem += f", got {json.dumps(value, ensure_ascii=False)}"
    return f"at {json_path(name)}: {problem}"


def json_path(name: str) -> str:
    """fastjsonschema's `data.items[0].b c` as the JSON path `$.items[0]['b c']`."""
    path = "$"
    for key, index in _PART.findall(name.removeprefix("data")):
        if index:
            path += f"[{index}]"
        elif _IDENTIFIER.match(key):
            path += f".{key}"
        else:
            path += f"[{key!r}]"
    return path


def payload_problem(value: Any, limit: int) -> str | None:
    """Why `value` is over `limit` bytes as JSON (`12,345 bytes as JSON, ...`), else None.

    Cheap for small values: a walk bounds the size from above, and only a value whose
    bound passes the limit is measured further. A value is encoded only when it is at
    most twice the limit (at least twice: `at least N bytes`), so one made of many
    references to a big string cannot blow up memory.
    """
    if _fits(value, limit):
        return None
    low = _lower(value, 2 * limit)
    if low <= 2 * limit:  # small enough to encode: the exact size
        try:
            size = len(_encode(value).encode())
        except (ValueError, TypeError, RecursionError):
            return None  # not JSON at all: the store says so when it writes it
        if size <= limit:
            return None
        return f"{size:,} bytes as JSON, over the limit of {limit:,} bytes {_WHERE}"
    return f"at least {low:,} bytes as JSON, over the limit of {limit:,} bytes {_WHERE}"


_WHERE = "(limits.max_payload_bytes in $SIRE_HOME/config.yaml)"


def _fits(value: Any, limit: int) -> bool:
    """Whether `value` is certainly at most `limit` bytes as JSON (the cheap first look)."""
    try:
        return _upper(value, limit) <= limit
    except RecursionError:
        return False


_UNBOUNDED = 1 << 62


def _upper(value: Any, room: int) -> int:
    """An upper bound of `value`'s JSON size; past `room`, only that it is past `room`.

    A string of n characters takes at most 6n + 2 bytes (`\\u0000` escapes); a value of a
    type JSON does not know is unbounded (it is encoded to know).
    """
    cls = value.__class__
    if cls is dict:
        size = 2 * len(value) + 2
        for key, item in value.items():
            # Inlined for the common case, a flat object of short strings and numbers.
            size += 6 * len(key) + 2 if key.__class__ is str else _upper(key, room)
            kind = item.__class__
            if kind is str:
                size += 6 * len(item) + 2
            elif kind is int or kind is float or kind is bool or item is None:
                size += 24 if kind is not int else item.bit_length() // 3 + 2
            else:
                size += _upper(item, room)
            if size > room:
                break
        return size
    if cls is str:
        return 6 * len(value) + 2
    if cls is int:
        return int(value.bit_length()) // 3 + 2
    if cls is list or cls is tuple:
        size = len(value) + 2
        for item in value:
            size += _upper(item, room)
            if size > room:
                break
        return size
    if cls is float or cls is bool or value is None:
        return 24
    if isinstance(value, str | int | float):
        return 6 * len(value) + 2 if isinstance(value, str) else 24
    if isinstance(value, Mapping):
        return _upper(dict(value), room)
    if isinstance(value, list | tuple):
        return _upper(list(value), room)
    return _UNBOUNDED


def _lower(value: Any, limit: int) -> int:
    """A lower bound of `value`'s JSON size, walked until it passes `limit`."""
    low = 0
    stack = [value]
    while stack and low <= limit:
        item = stack.pop()
        if isinstance(item, str):
            low += len(item) + 2
        elif isinstance(item, Mapping):
            low += 2 * len(item) + 1
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            low += len(item) + 1
            stack.extend(item)
        else:
            low += 1
    return low
