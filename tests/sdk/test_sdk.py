"""The SDK: expressions render as templates, steps compile to the loader's own model."""

from __future__ import annotations

import runpy
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sire.errors import CycleError, DefinitionError
from sire.model.loader import load_workflow, parse_workflow
from sire.model.workflow import RetryPolicy
from sire.sdk import Input, Ref, Retry, Workflow, execution, expr, index, item, secrets
from sire.sdk.tools import echo, exec_, file_write, http_request, sleep, text_template

from .conftest import EXAMPLES, FIXTURES
from .fixtures import examples_sdk
from .test_roundtrip import definition


def here() -> int:
    """The line after the caller's: where the statement under test starts."""
    return sys._getframe(1).f_lineno + 1


# Expressions


def test_an_expression_renders_as_a_template_also_inside_f_strings() -> None:
    wf = Workflow("w", inputs={"name": Input(str)})
    assert str(wf.inputs.name) == "{{ inputs.name }}"
    assert f"Hello, {wf.inputs.name}!" == "Hello, {{ inputs.name }}!"
    assert f"{wf.inputs.name:raw}" == "inputs.name"


def test_attributes_keys_and_filters_extend_the_expression() -> None:
    ref = Ref("steps.a.output")
    assert str(ref.items[0].name) == "{{ steps.a.output.items[0].name }}"
    assert str(ref["a-b"]) == "{{ steps.a.output['a-b'] }}"
    assert str(ref["if"]) == "{{ steps.a.output['if'] }}"
    assert str(ref["plain"]) == "{{ steps.a.output.plain }}"
    assert str(ref.items | "map(attribute='x')" | "list") == (
        "{{ steps.a.output.items | map(attribute='x') | list }}"
    )
    assert str(expr(f"{ref.n:raw} > 3")) == "{{ steps.a.output.n > 3 }}"
    assert str(item.path) == "{{ item.path }}"
    assert f"{index}" == "{{ index }}"
    assert str(execution.workspace) == "{{ execution.workspace }}"
    assert str(secrets.token) == "{{ secrets.token }}"


def test_an_expression_has_no_truth_value_and_cannot_be_iterated_in_python() -> None:
    with pytest.raises(TypeError, match="when="):
        bool(item)
    with pytest.raises(TypeError, match="for_each="):
        list(item)
    with pytest.raises(ValueError, match="unknown format"):
        f"{item:>10}"


def test_an_undeclared_input_is_an_attribute_error_with_a_hint() -> None:
    wf = Workflow("w", inputs={"name": Input(str)})
    with pytest.raises(AttributeError, match=r"declares no input 'nmae'.*did you mean 'name'"):
        _ = wf.inputs.nmae
    with pytest.raises(KeyError, match="declares no input"):
        _ = wf.inputs["nmae"]


def test_a_typed_output_knows_its_fields_and_still_reads_any_key() -> None:
    wf = Workflow("w")
    greet = wf.step("greet", text_template(template="hi"))
    assert str(greet.output.text) == "{{ steps.greet.output.text }}"
    assert str(greet.output["extra"]) == "{{ steps.greet.output.extra }}"
    with pytest.raises(AttributeError):
        _ = greet.output.txt  # type: ignore[attr-defined]


# Inputs


@pytest.mark.parametrize(
    ("spec", "schema"),
    [
        (Input(str, default="world"), {"type": "string", "default": "world"}),
        (Input(int, minimum=0), {"type": "integer", "minimum": 0}),
        (Input(list[int]), {"type": "array", "items": {"type": "integer"}}),
        (
            Input(dict[str, bool], description="Flags."),
            {
                "type": "object",
                "additionalProperties": {"type": "boolean"},
                "description": "Flags.",
            },
        ),
        (Input(enum=["a", "b"], default=("a",)), {"enum": ["a", "b"], "default": ["a"]}),
    ],
)
def test_an_input_is_a_json_schema(spec: Input, schema: dict[str, object]) -> None:
    assert spec.schema == schema


def test_an_input_type_json_schema_cannot_say_is_refused() -> None:
    with pytest.raises(TypeError, match="str, int, float, bool"):
        Input(set[int])


# Compiling


@pytest.mark.parametrize(
    ("build", "yaml_file"),
    [
        (lambda: runpy.run_path(str(EXAMPLES / "sdk" / "greet.py"))["workflow"], "hello.yaml"),
        (examples_sdk.fan_out, "fan-out.yaml"),
        (examples_sdk.files, "files.yaml"),
    ],
    ids=["hello", "fan-out", "files"],
)
def test_an_sdk_workflow_compiles_to_the_model_of_its_hand_written_yaml(
    build: Callable[[], Workflow], yaml_file: str
) -> None:
    assert definition(build().to_model()) == definition(load_workflow(EXAMPLES / yaml_file))


def test_the_flaky_fixture_compiles_to_the_model_of_its_yaml() -> None:
    sdk = runpy.run_path(str(FIXTURES / "flaky.py"))["workflow"]
    assert definition(sdk.to_model()) == definition(load_workflow(FIXTURES / "flaky.yaml"))


def test_the_yaml_loads_back_to_exactly_the_compiled_model_digest_included() -> None:
    wf = examples_sdk.files()
    model = wf.to_model()
    assert parse_workflow(wf.to_yaml()) == model
    assert model.text == wf.to_yaml()


def test_steps_options_reach_the_model() -> None:
    wf = Workflow(
        "opts",
        inputs={"go": Input(bool, default=True), "names": Input(list[str], default=[])},
        servers={"calc": {"url": "http://localhost:1/mcp", "headers": {"X": f"{secrets.x}"}}},
        max_concurrency=5,
        retry=Retry(max_attempts=4, initial_interval="250ms"),
        timeout="1m",
    )
    first = wf.step("first", echo(a=1), description="The first.")
    each = wf.step(
        "each",
        "mcp:calc#add",
        {"a": item, "b": index},
        for_each=wf.inputs.names,
        max_concurrency=2,
        needs=[first],
        when=wf.inputs.go,
        retry=Retry(max_attempts=2, retry_on=("transport",), jitter=0.5),
        timeout=3,
        input_schema={"type": "object"},
        output_schema={"type": "object"},
    )
    last = wf.step("last", "sire:local/echo", needs=[first, each], needs_any=True)
    wf.outputs = {"all": [each.output.items, last.output]}
    model = wf.to_model()
    assert model.max_concurrency == 5
    assert model.servers["calc"].headers == {"X": "{{ secrets.x }}"}
    assert model.step("first").retry == RetryPolicy(max_attempts=4, initial_interval=0.25)
    assert model.step("first").timeout == 60.0
    assert model.step("first").description == "The first."
    step = model.step("each")
    assert step.params == {"a": "{{ item }}", "b": "{{ index }}"}
    assert (step.for_each, step.max_concurrency, step.when) == (
        "{{ inputs.names }}",
        2,
        "{{ inputs.go }}",
    )
    assert step.needs == ("first",)
    assert step.retry == RetryPolicy(max_attempts=2, jitter=0.5, retry_on=frozenset({"transport"}))
    assert step.timeout == 3.0
    assert (step.input_schema, step.output_schema) == ({"type": "object"}, {"type": "object"})
    assert model.step("last").params is None
    assert model.step("last").needs_any is True
    assert model.outputs == {"all": ["{{ steps.each.output.items }}", "{{ steps.last.output }}"]}


def test_typed_tools_leave_out_the_arguments_not_given() -> None:
    wf = Workflow("tools")
    w = wf.step("w", file_write(path="a.txt", content="x", append=True))
    r = wf.step("r", exec_(command=["echo", w.output.path], timeout=5))
    h = wf.step("h", http_request(url="https://example.com", json={"k": r.output.stdout}))
    wf.step("s", sleep("250ms"))
    model = wf.to_model()
    assert model.step("w").params == {"path": "a.txt", "content": "x", "append": True}
    assert model.step("r").params == {
        "command": ["echo", "{{ steps.w.output.path }}"],
        "timeout": 5,
    }
    assert model.step("h").params == {
        "url": "https://example.com",
        "json": {"k": "{{ steps.r.output.stdout }}"},
    }
    assert str(model.step("s").tool) == "sire:local/sleep"
    assert str(h.output.json) == "{{ steps.h.output.json }}"


# Errors point at the Python line


def test_a_reused_step_id_is_refused_at_its_line() -> None:
    wf = Workflow("dup")
    wf.step("a", echo())
    line = here()
    with pytest.raises(DefinitionError) as caught:
        wf.step("a", echo())
    assert Path(caught.value.file or "").resolve() == Path(__file__).resolve()
    assert caught.value.line == line + 1
    assert caught.value.reason == "step id 'a' is already used"
    assert caught.value.path == "steps[1].id"


def test_a_step_given_as_a_value_is_refused() -> None:
    wf = Workflow("val")
    a = wf.step("a", echo())
    with pytest.raises(DefinitionError, match="is a step, not a value") as caught:
        wf.step("b", "sire:local/echo", {"x": a})
    assert caught.value.path == "steps[1].with.x"


def test_needs_takes_only_this_workflows_steps() -> None:
    other = Workflow("other")
    foreign = other.step("a", echo())
    wf = Workflow("this")
    with pytest.raises(DefinitionError, match="belongs to another workflow"):
        wf.step("b", echo(), needs=[foreign])
    with pytest.raises(DefinitionError, match="needs takes steps returned by step"):
        wf.step("c", echo(), needs=["a"])  # type: ignore[list-item]


def test_a_loader_error_points_at_the_python_line_of_the_step() -> None:
    wf = Workflow("bad")
    wf.step("a", echo())
    line = here()
    wf.step("9lives", echo())
    with pytest.raises(DefinitionError, match="invalid id '9lives'") as caught:
        wf.to_model()
    assert Path(caught.value.file or "").resolve() == Path(__file__).resolve()
    assert caught.value.line == line
    assert caught.value.path == "steps[1].id"


def test_a_cycle_through_templates_is_the_loaders_cycle_error() -> None:
    wf = Workflow("cycle")
    wf.step("a", "sire:local/echo", {"x": "{{ steps.b.output }}"})
    wf.step("b", "sire:local/echo", {"x": "{{ steps.a.output }}"})
    with pytest.raises(CycleError) as caught:
        wf.to_yaml()
    assert caught.value.cycle == ["a", "b", "a"]


def test_an_invalid_output_points_at_the_line_that_set_the_outputs() -> None:
    wf = Workflow("outs")
    wf.step("a", echo())
    line = here()
    wf.outputs = {"x": "{{ steps.nope.output }}"}
    with pytest.raises(DefinitionError, match="unknown step 'nope'") as caught:
        wf.to_model()
    assert caught.value.line == line
