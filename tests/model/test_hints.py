"""Definition errors say what, where, and `did you mean …?` when a close name exists."""

from __future__ import annotations

import textwrap

import pytest

from sire.cli.runtime import build_dispatcher, check_workflow
from sire.config import load_config
from sire.errors import DefinitionError, InputError, did_you_mean
from sire.model.inputs import parse_assignments
from sire.model.loader import parse_workflow


def error_of(text: str) -> DefinitionError:
    with pytest.raises(DefinitionError) as caught:
        parse_workflow(textwrap.dedent(text), source="wf.yaml")
    return caught.value


def edge_error_of(text: str) -> DefinitionError:
    """The error `sire workflow validate` reports at the edge (tools, servers, schemes)."""
    workflow = parse_workflow(textwrap.dedent(text), source="wf.yaml")
    config = load_config()
    with pytest.raises(DefinitionError) as caught:
        check_workflow(workflow, build_dispatcher(config), config)
    return caught.value


def test_an_unknown_step_in_needs_suggests_the_closest_id() -> None:
    error = error_of("""
        id: demo
        steps:
          - {id: greet, tool: sire:local/echo}
          - {id: save, tool: sire:local/echo, needs: [gret]}
    """)
    assert error.reason == "unknown step 'gret' in needs"
    assert error.hint == "did you mean 'greet'?"
    assert str(error) == (
        "wf.yaml:5: unknown step 'gret' in needs at steps[1].needs[0]; did you mean 'greet'?"
    )


def test_a_template_reading_an_unknown_step_suggests_the_closest_id() -> None:
    error = error_of("""
        id: demo
        steps:
          - {id: greet, tool: sire:local/echo}
          - id: save
            tool: sire:local/echo
            with: {text: "{{ steps.greeet.output.text }}"}
    """)
    assert (error.line, error.path) == (7, "steps[1].with.text")
    assert error.reason == "template reads unknown step 'greeet'"
    assert error.hint == "did you mean 'greet'?"


def test_a_misspelt_input_or_context_name_in_a_template_gets_a_hint() -> None:
    misspelt_input = error_of("""
        id: demo
        inputs:
          name: {type: string}
        steps:
          - {id: a, tool: sire:local/echo, with: {text: "{{ inputs.nmae }}"}}
    """)
    assert misspelt_input.hint == "did you mean 'name'?"
    singular = error_of("""
        id: demo
        steps:
          - {id: a, tool: sire:local/echo, with: {text: "{{ input.name }}"}}
    """)
    assert singular.reason.startswith("unknown name 'input' in template")
    assert singular.hint == "did you mean 'inputs'?"


@pytest.mark.parametrize(
    ("text", "path", "hint"),
    [
        (
            "id: d\nsteps:\n  - {id: a, tool: sire:local/echo, neds: [b]}\n",
            "steps[0].neds",
            "did you mean 'needs'?",
        ),
        (
            "id: d\nsteps:\n  - {id: a, tool: sire:local/echo, wiht: {}}\n",
            "steps[0].wiht",
            "did you mean 'with'?",
        ),
        (
            "id: d\nsteps:\n  - {id: a, tool: sire:local/echo, retry: {max_atempts: 2}}\n",
            "steps[0].retry.max_atempts",
            "did you mean 'max_attempts'?",
        ),
        (
            "id: d\nservers: {s: {url: 'http://h', header: {}}}\n"
            "steps:\n  - {id: a, tool: sire:local/echo}\n",
            "servers.s.header",
            "did you mean 'headers'?",
        ),
        (
            "id: d\ndefault: {}\nsteps:\n  - {id: a, tool: sire:local/echo}\n",
            "default",
            "did you mean 'defaults'?",
        ),
    ],
    ids=["step-needs", "step-with", "retry", "server", "workflow"],
)
def test_an_unknown_key_suggests_the_closest_key_allowed_there(
    text: str, path: str, hint: str
) -> None:
    error = error_of(text)
    assert error.path == path
    assert error.reason.startswith(f"unknown field '{path.rpartition('.')[2]}'")
    assert error.hint == hint


def test_no_hint_when_nothing_is_close() -> None:
    need = error_of("""
        id: demo
        steps:
          - {id: greet, tool: sire:local/echo, needs: [zzz]}
    """)
    assert need.hint is None
    assert str(need) == "wf.yaml:4: unknown step 'zzz' in needs at steps[0].needs[0]"
    key = error_of("""
        id: demo
        steps:
          - {id: save, tool: sire:local/echo, bogus: 1}
    """)
    assert key.hint is None
    assert str(key) == "wf.yaml:4: unknown field 'bogus' at steps[0].bogus"
    assert did_you_mean("xyz", ["greet", "save"]) is None


def test_an_unknown_builtin_tool_suggests_the_closest_tool() -> None:
    error = edge_error_of("""
        id: demo
        steps:
          - {id: a, tool: sire:local/file.wirte}
    """)
    assert (error.line, error.path) == (4, "steps[0].tool")
    assert error.reason.startswith("no tool 'file.wirte' on server 'sire' (tools: ")
    assert error.reason.endswith("; did you mean 'file.write'?")


def test_an_unknown_server_name_suggests_the_closest_server() -> None:
    error = edge_error_of("""
        id: demo
        servers:
          calc: {url: "http://127.0.0.1:9/mcp"}
        steps:
          - {id: a, tool: "mcp:calk#add"}
    """)
    assert error.line == 6
    assert error.reason.startswith("unknown server 'calk' in 'mcp:calk#add' (declared: calc;")
    assert error.reason.endswith("; did you mean 'calc'?")


def test_an_unknown_scheme_suggests_the_closest_scheme() -> None:
    error = edge_error_of("""
        id: demo
        steps:
          - {id: a, tool: "mpc:calc#add"}
    """)
    assert error.reason.startswith("unknown tool scheme 'mpc:' (known: ")
    assert error.reason.endswith("; did you mean 'mcp:'?")


def test_an_unknown_input_on_the_command_line_suggests_the_closest_input() -> None:
    workflow = parse_workflow(
        "id: demo\ninputs:\n  name: {type: string}\n  count: {type: integer}\n"
        "steps:\n  - {id: a, tool: sire:local/echo}\n"
    )
    with pytest.raises(InputError) as caught:
        parse_assignments(workflow, ["nmae=Ada"])
    assert str(caught.value) == (
        "workflow 'demo' has no input 'nmae' (declared: count, name); did you mean 'name'?"
    )
    with pytest.raises(InputError) as unrelated:
        parse_assignments(workflow, ["zzz=1"])
    assert "did you mean" not in str(unrelated.value)
