"""The engine enforces each step's `input_schema` / `output_schema`, remote tools' declared
schemas, and the payload limit on step outputs: a violation fails the step, once, naming
the JSON path (or the sizes)."""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sire.dispatch.inprocess import InProcessDispatcher, InProcessServer
from sire.dispatch.mux import DispatcherMux
from sire.engine.checks import json_path, payload_problem
from sire.engine.engine import Engine
from sire.errors import DefinitionError
from sire.model.execution import Execution, ExecutionStatus, StepStatus, new_execution_id
from sire.model.inputs import resolve_inputs
from sire.model.loader import parse_workflow
from sire.model.workflow import Workflow
from sire.testing import FakeClock, MemoryStore

BOUND = 10.0  # seconds a run may take before the test fails
SDK_SERVER = Path(__file__).parents[1] / "remote" / "sdk_server.py"


class Tools:
    """In-process tools that return what they are told to, counting their calls."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.server = InProcessServer("test")
        self.server.add_tool(self.give, name="give")

    def give(self, **params: Any) -> dict[str, Any]:
        """Return `params['output']` (or the params themselves)."""
        self.calls.append(params)
        output: dict[str, Any] = params.get("output", params)
        return output


@pytest.fixture
def tools() -> Tools:
    return Tools()


def workflow(text: str) -> Workflow:
    return parse_workflow(textwrap.dedent(text), source="test.yaml")


async def run(
    tools: Tools,
    wf: Workflow,
    inputs: dict[str, Any] | None = None,
    *,
    limit: int | None = None,
    store: MemoryStore | None = None,
) -> Execution:
    store = store or MemoryStore()
    mux = DispatcherMux({"sire": InProcessDispatcher(tools.server)}, entry_points=False)
    engine = Engine(store, mux, clock=FakeClock(), max_payload_bytes=limit)
    values = resolve_inputs(wf, inputs or {})
    execution = Execution(new_execution_id(), wf.id, wf.digest, inputs=values)
    await store.create_execution(execution, wf.text)
    async with asyncio.timeout(BOUND):
        return await engine.run(wf, execution)


GREET = """
    id: greet
    inputs:
      name: {}
    steps:
      - id: greet
        tool: sire:local/give
        with: {name: "{{ inputs.name }}", output: {text: "{{ inputs.name }}"}}
        retry: {max_attempts: 3}
        input_schema:
          type: object
          properties: {name: {type: string}}
        output_schema:
          type: object
          properties: {text: {type: string}}
          required: [text]
      - id: after
        tool: sire:local/give
        with: {text: "{{ steps.greet.output.text }}"}
"""


async def test_params_that_break_input_schema_fail_the_step_before_the_call(
    tools: Tools,
) -> None:
    execution = await run(tools, workflow(GREET), {"name": 3})

    greet = execution.step_states["greet"]
    assert greet.status is StepStatus.FAILED
    assert greet.error == (
        "steps.greet: params do not match input_schema at $.name: must be string, got 3"
    )
    assert greet.attempts == 1  # deterministic: never retried
    assert tools.calls == []
    assert execution.step_states["after"].status is StepStatus.SKIPPED
    assert execution.status is ExecutionStatus.FAILED
    assert execution.error == f"step 'greet' failed: {greet.error}"


async def test_output_that_breaks_output_schema_fails_the_step_once_naming_the_path(
    tools: Tools,
) -> None:
    wf = workflow(GREET.replace('text: "{{ inputs.name }}"', "text: 3"))
    store = MemoryStore()

    execution = await run(tools, wf, {"name": "ann"}, store=store)

    greet = execution.step_states["greet"]
    assert greet.error == (
        "steps.greet: output does not match output_schema at $.text: must be string, got 3"
    )
    assert len(tools.calls) == 1  # not retried, although the step allows 3 attempts
    stored = await store.get_execution(execution.id)
    assert stored.step_states["greet"].status is StepStatus.FAILED
    assert stored.step_states["greet"].output is None
    assert stored.status is ExecutionStatus.FAILED


async def test_values_that_match_the_schemas_pass_unchanged(tools: Tools) -> None:
    wf = workflow(
        GREET.replace("properties: {name: {type: string}}", "properties: {name: {default: x}}")
    )

    execution = await run(tools, wf, {"name": "ann"})

    assert execution.status is ExecutionStatus.COMPLETED
    assert execution.step_states["greet"].output == {"text": "ann"}
    assert tools.calls[0] == {"name": "ann", "output": {"text": "ann"}}  # no default filled in


@pytest.mark.parametrize(
    ("output", "schema", "problem"),
    [
        ({}, {"required": ["text", "n"]}, "at $: missing 'text', 'n'"),
        (
            {"rows": [{"name": "a"}, {"name": 7}]},
            {"properties": {"rows": {"items": {"properties": {"name": {"type": "string"}}}}}},
            "at $.rows[1].name: must be string, got 7",
        ),
        (
            {"a b": {"c": None}},
            {"properties": {"a b": {"properties": {"c": {"type": "integer"}}}}},
            "at $['a b'].c: must be integer, got null",
        ),
        (
            {"extra": 1},
            {"additionalProperties": False},
            "at $: must not contain {'extra'} properties",
        ),
        (
            {"pair": ["x", "y"]},  # 2020-12 tuples, as MCP tools advertise them
            {"properties": {"pair": {"prefixItems": [{"type": "string"}, {"type": "integer"}]}}},
            'at $.pair[1]: must be integer, got "y"',
        ),
        (
            {"level": "loud"},
            {"properties": {"level": {"enum": ["low", "high"]}}},
            "at $.level: must be one of ['low', 'high'], got \"loud\"",
        ),
    ],
)
async def test_output_violations_name_the_json_path_of_the_offending_value(
    tools: Tools, output: dict[str, Any], schema: dict[str, Any], problem: str
) -> None:
    wf = workflow(f"""
        id: paths
        steps:
          - id: s
            tool: sire:local/give
            with: {{output: {json.dumps(output)}}}
            output_schema: {json.dumps(schema)}
    """)

    execution = await run(tools, wf)

    assert execution.step_states["s"].error == (
        f"steps.s: output does not match output_schema {problem}"
    )


async def test_for_each_checks_each_items_output(tools: Tools) -> None:
    wf = workflow("""
        id: items
        inputs:
          values: {}
        steps:
          - id: each
            for_each: "{{ inputs.values }}"
            tool: sire:local/give
            with: {output: {n: "{{ item }}"}}
            output_schema: {properties: {n: {type: integer}}}
    """)

    execution = await run(tools, wf, {"values": [1, "two", 3]})

    assert execution.step_states["each/1"].status is StepStatus.FAILED
    assert execution.step_states["each/2"].status is StepStatus.COMPLETED
    assert execution.step_states["each"].error == (
        "1 of 3 items failed; item 1: steps.each: output does not match output_schema "
        'at $.n: must be integer, got "two"'
    )


async def test_an_output_over_the_payload_limit_fails_its_step_naming_the_sizes(
    tools: Tools,
) -> None:
    wf = workflow("""
        id: big
        inputs:
          text: {}
        steps:
          - id: small
            tool: sire:local/give
            with: {output: {text: "hi"}}
          - id: big
            tool: sire:local/give
            with: {output: {text: "{{ inputs.text }}"}}
            retry: {max_attempts: 3}
    """)

    execution = await run(tools, wf, {"text": "é" * 100}, limit=150)

    assert execution.step_states["small"].status is StepStatus.COMPLETED
    big = execution.step_states["big"]
    assert big.error == (
        "steps.big: output is 211 bytes as JSON, over the limit of 150 bytes "
        "(limits.max_payload_bytes in $SIRE_HOME/config.yaml)"
    )
    assert big.attempts == 1
    assert len(tools.calls) == 2


async def test_for_each_items_that_fit_can_still_make_an_output_over_the_limit(
    tools: Tools,
) -> None:
    wf = workflow("""
        id: items
        steps:
          - id: each
            for_each: "{{ [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }}"
            tool: sire:local/give
            with: {output: {text: "{{ 'x' * 20 }}"}}
    """)

    execution = await run(tools, wf, limit=200)

    assert all(execution.step_states[f"each/{i}"].status is StepStatus.COMPLETED for i in range(10))
    size = len(json.dumps({"items": [{"text": "x" * 20}] * 10}, separators=(",", ":")))
    each = execution.step_states["each"]
    assert each.status is StepStatus.FAILED
    assert each.error is not None
    assert each.error.startswith(
        f"steps.each: output is {size} bytes as JSON, over the limit of 200"
    )


async def test_a_value_of_many_references_to_one_string_is_refused_without_encoding_it() -> None:
    big = "x" * 1_000_000
    problem = payload_problem({"rows": [big] * 100_000}, 10 * 1024 * 1024)  # 100 GB as JSON

    assert problem is not None
    assert problem.startswith("at least ")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values, limit=st.integers(min_value=1, max_value=400))
def test_payload_problem_is_reported_exactly_when_the_json_is_over_the_limit(
    value: Any, limit: int
) -> None:
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())

    problem = payload_problem(value, limit)

    assert (problem is not None) == (size > limit)
    if problem is not None and not problem.startswith("at least"):
        assert problem.startswith(f"{size:,} bytes as JSON")


@pytest.mark.parametrize(
    ("name", "path"),
    [("data", "$"), ("data.a", "$.a"), ("data.a[0].b", "$.a[0].b"), ("data.a b", "$['a b']")],
)
def test_json_paths_are_written_as_jsonpath(name: str, path: str) -> None:
    assert json_path(name) == path


def test_steps_without_schemas_or_limit_compile_no_checks() -> None:
    wf = workflow(GREET)
    mux = DispatcherMux({}, entry_points=False)

    compiled = Engine(MemoryStore(), mux).compile(wf)

    assert compiled["after"].checks is None
    assert compiled["greet"].checks is not None


@pytest.mark.parametrize(
    ("schema", "reason"),
    [
        ("{type: strin}", "step 's' has an invalid output_schema (Unknown type"),
        ("{properties: 3}", "step 's' has an invalid output_schema ("),
        (
            "{$ref: 'http://203.0.113.9/schema.json'}",
            "step 's' has an invalid output_schema (a $ref to another document is not supported",
        ),
    ],
)
def test_an_invalid_step_schema_is_a_definition_error_at_its_line(schema: str, reason: str) -> None:
    text = f"""\
id: bad
steps:
  - id: s
    tool: sire:local/echo
    output_schema: {schema}
"""
    with pytest.raises(DefinitionError) as caught:
        parse_workflow(text, source="bad.yaml")

    assert caught.value.reason.startswith(reason)
    assert caught.value.path == "steps[0].output_schema"
    assert caught.value.line == 5


async def test_a_remote_tools_output_that_breaks_its_output_schema_names_the_path() -> None:
    from sire.dispatch.remote import RemoteDispatcher

    wf = workflow(f"""
        id: remote
        servers:
          sdk: {{command: [{json.dumps(sys.executable)}, {json.dumps(str(SDK_SERVER))}, stdio]}}
        steps:
          - id: add
            tool: mcp:sdk#bad_output
            retry: {{max_attempts: 3}}
    """)
    remote = RemoteDispatcher({})
    mux = DispatcherMux({"mcp": remote}, entry_points=False)
    store = MemoryStore()
    execution = Execution(new_execution_id(), wf.id, wf.digest)
    await store.create_execution(execution, wf.text)
    try:
        async with asyncio.timeout(30):
            execution = await Engine(store, mux, clock=FakeClock()).run(wf, execution)
    finally:
        await remote.aclose()

    add = execution.step_states["add"]
    assert add.status is StepStatus.FAILED
    assert add.error == (
        "tool 'bad_output' on MCP server 'sdk': output does not match its outputSchema "
        "at $.sum: 'not a number' is not of type 'integer'"
    )
    assert add.attempts == 1


async def test_a_schema_that_does_not_compile_fails_its_step_not_the_run(tools: Tools) -> None:
    # The loader refuses such a schema; a definition cached by an older Sire may hold one.
    from sire.model.uri import ToolURI
    from sire.model.workflow import Step

    give = ToolURI.parse("sire:local/give")
    wf = Workflow(
        id="cached",
        steps=(
            Step(id="bad", tool=give, params={"n": 1}, output_schema={"type": "strin"}),
            Step(id="good", tool=give, params={"n": 2}),
        ),
    )

    execution = await run(tools, wf)

    assert execution.step_states["bad"].error == (
        "steps.bad: output_schema is not a valid JSON Schema (Unknown type)"
    )
    assert execution.step_states["good"].status is StepStatus.COMPLETED
    assert tools.calls == [{"n": 2}]
