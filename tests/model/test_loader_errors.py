"""Every kind of definition error names its type, file, line and path exactly."""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path

import pytest

from sire.errors import CycleError, DefinitionError
from sire.model.loader import MAX_NODES, load_workflow, parse_workflow

SOURCE = "flows/demo.yaml"


def yaml_text(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def definition_error(text: str) -> DefinitionError:
    """Parse `text` (dedented) and return the DefinitionError it must raise."""
    with pytest.raises(DefinitionError) as caught:
        parse_workflow(yaml_text(text), source=SOURCE)
    return caught.value


def plain_error(text: str) -> DefinitionError:
    """Like `definition_error`, and the error is a DefinitionError, not a subclass."""
    error = definition_error(text)
    assert type(error) is DefinitionError
    assert error.file == SOURCE
    return error


# -- the YAML itself -------------------------------------------------------------------


def test_malformed_yaml_is_reported_at_the_offending_line() -> None:
    error = plain_error(
        """
        id: demo
        steps:
          - id: a
            tool: sire: local
        """
    )
    assert error.line == 4
    assert error.path == ""
    assert error.reason.startswith("invalid YAML: ")
    assert "mapping values are not allowed" in error.reason


def test_an_unclosed_flow_mapping_is_reported_where_the_parser_gives_up() -> None:
    error = plain_error(
        """
        id: demo
        steps:
          - id: a
            tool: sire:local/echo
            with: {a: 1
        """
    )
    assert error.line == 6
    assert error.path == ""
    assert error.reason.startswith("invalid YAML: ")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_an_empty_file_is_reported_at_line_one(text: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_workflow(text, source=SOURCE)
    error = caught.value
    assert type(error) is DefinitionError
    assert (error.file, error.line, error.path) == (SOURCE, 1, "")
    assert error.reason == "the file is empty"


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_a_top_level_that_is_not_a_mapping_is_rejected(text: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_workflow(text, source=SOURCE)
    error = caught.value
    assert type(error) is DefinitionError
    assert error.file == SOURCE
    assert error.path == ""
    assert "mapping" in error.reason


def test_a_top_level_that_is_not_a_mapping_is_reported_at_line_one() -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_workflow("- a\n- b\n", source=SOURCE)
    assert caught.value.line == 1
    assert str(caught.value).startswith(f"{SOURCE}:1: ")


def test_a_duplicate_yaml_key_is_reported_at_the_second_occurrence() -> None:
    error = plain_error(
        """
        id: demo
        steps:
          - id: a
            tool: sire:local/echo
            tool: sire:local/file.write
        """
    )
    assert error.line == 5
    assert error.path == "steps[0].tool"
    assert error.reason == "duplicate key 'tool'"


def test_an_unknown_yaml_tag_is_reported_with_its_line_and_path() -> None:
    error = plain_error(
        """
        id: demo
        steps:
          - id: a
            tool: !shout sire:local/echo
        """
    )
    assert error.line == 4
    assert error.path == "steps[0].tool"
    assert error.reason.startswith("invalid YAML value: ")


def test_an_unknown_yaml_tag_is_reported_on_one_line() -> None:
    error = plain_error(
        """
        id: demo
        steps:
          - id: a
            tool: !shout sire:local/echo
        """
    )
    assert "\n" not in str(error)


@pytest.mark.parametrize(
    "value", ["!!float nope", "!!int nope", "!!bool maybe", "!!timestamp nope"]
)
def test_a_value_that_does_not_fit_its_explicit_tag_is_a_definition_error(value: str) -> None:
    error = plain_error(
        f"""
        id: demo
        steps:
          - id: a
            tool: sire:local/echo
            timeout: {value}
        """
    )
    assert (error.line, error.path) == (5, "steps[0].timeout")


def test_a_control_character_is_reported_on_one_line_with_its_line_number() -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_workflow("id: demo\nsteps: \x07\n", source=SOURCE)
    error = caught.value
    assert error.line == 2
    assert "\n" not in str(error)


def test_an_alias_bomb_is_cut_off_at_the_node_budget() -> None:
    # Nine levels of nine aliases would expand to 9**9 strings; the budget stops it
    # after MAX_NODES conversions, so this returns at once instead of exhausting memory.
    levels = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    text = "id: demo\n" + "\n".join(levels) + "\nsteps: []\n"
    with pytest.raises(DefinitionError) as caught:
        parse_workflow(text, source=SOURCE)
    error = caught.value
    assert type(error) is DefinitionError
    assert f"more than {MAX_NODES} nodes" in error.reason
    assert (error.file, error.line, error.path) == (SOURCE, 2, "")


def test_a_recursive_alias_is_a_definition_error() -> None:
    error = plain_error(
        """
        id: demo
        steps: &loop [*loop]
        """
    )
    assert error.line == 2


def test_deeply_nested_yaml_is_a_definition_error() -> None:
    depth = 900
    with pytest.raises(DefinitionError) as caught:
        parse_workflow("id: demo\nsteps: " + "[" * depth + "]" * depth + "\n", source=SOURCE)
    assert caught.value.line == 2


def test_yaml_nested_beyond_the_parser_limit_is_a_definition_error() -> None:
    depth = 2000
    with pytest.raises(DefinitionError) as caught:
        parse_workflow("id: demo\nsteps: " + "[" * depth + "]" * depth + "\n", source=SOURCE)
    error = caught.value
    assert type(error) is DefinitionError
    assert (error.line, error.path) == (2, "")


def test_a_mapping_key_that_is_not_a_scalar_is_reported_at_the_key() -> None:
    error = plain_error(
        """
        id: demo
        steps:
          - id: a
            tool: sire:local/echo
            with:
              ? [x, y]
              : 1
        """
    )
    assert (error.line, error.path) == (6, "steps[0].with")
    assert error.reason == "mapping keys must be plain strings"


# -- the document's shape ----------------------------------------------------------------


def test_a_missing_tool_is_reported_at_its_step() -> None:
    error = plain_error(
        """
        id: demo
        steps:
          - id: a
            tool: sire:local/echo
          - id: b
            needs: [a]
        """
    )
    assert error.line == 5
    assert error.path == "steps[1]"
    assert error.reason == "missing required field 'tool'"


def test_a_missing_steps_list_is_reported_at_the_top() -> None:
    error = plain_error(
        """
        id: demo
        description: nothing to do
        """
    )
    assert (error.line, error.path) == (1, "")
    assert error.reason == "missing required field 'steps'"


def test_a_misspelt_field_is_reported_as_unknown_at_its_key() -> None:
    error = plain_error(
        """
        id: demo
        steps:
          - id: a
            tol: sire:local/echo
        """
    )
    assert error.line == 4
    assert error.path == "steps[0].tol"
    assert "unknown field 'tol'" in error.reason


def test_a_value_of_the_wrong_type_is_reported_at_its_key() -> None:
    error = plain_error(
        """
        id: demo
        max_concurrency: many
        steps:
          - id: a
            tool: sire:local/echo
        """
    )
    assert error.line == 2
    assert error.path == "max_concurrency"
    assert "integer" in error.reason


def test_an_invalid_step_id_is_reported_at_the_id() -> None:
    error = plain_error(
        """
        id: demo
        steps:
          - id: a
            tool: sire:local/echo
          - id: 1abc
            tool: sire:local/echo
        """
    )
    assert error.line == 5
    assert error.path == "steps[1].id"
    assert "invalid id '1abc'" in error.reason


def test_an_invalid_workflow_id_is_reported_at_the_id() -> None:
    error = plain_error(
        """
        description: first
        id: Demo!
        steps:
          - id: a
            tool: sire:local/echo
        """
    )
    assert error.line == 2
    assert error.path == "id"
    assert "invalid workflow id 'Demo!'" in error.reason


def test_a_duplicate_step_id_is_reported_at_the_second_step() -> None:
    error = plain_error(
        """
        id: demo
        steps:
          - id: a
            tool: sire:local/echo
          - id: a
            tool: sire:local/echo
        """
    )
    assert error.line == 5
    assert error.path == "steps[1].id"
    assert "duplicate step id 'a'" in error.reason
    assert "steps[0]" in error.reason


def test_zero_max_attempts_is_reported_inside_retry() -> None:
    error = plain_error(
        """
        id: demo
        steps:
          - id: a
            tool: sire:local/echo
            retry:
              max_attempts: 0
        """
    )
    assert (error.line, error.path) == (6, "steps[0].retry.max_attempts")


def test_an_input_with_an_invalid_json_schema_is_reported_at_the_input() -> None:
    error = plain_error(
        """
        id: demo
        inputs:
          name: {type: string}
          count: {type: integr}
        steps:
          - id: a
            tool: sire:local/echo
        """
    )
    assert (error.line, error.path) == (4, "inputs.count")
    assert error.reason.startswith("input 'count' has an invalid JSON Schema")


# -- the DAG ----------------------------------------------------------------------------


def test_unknown_need_is_reported_with_its_line_and_path() -> None:
    error = plain_error(
        """
        id: demo
        steps:
          - id: a
            tool: sire:local/echo
          - id: b
            tool: sire:local/echo
          - id: c
            tool: sire:local/echo
            needs:
              - a
              - nope
        """
    )
    assert error.line == 11
    assert error.path == "steps[2].needs[1]"
    assert error.reason == "unknown step 'nope' in needs"


def test_unknown_first_need_is_reported_at_needs_index_zero() -> None:
    error = plain_error(
        """
        id: demo
        steps:
          - id: a
            tool: sire:local/echo
          - id: b
            tool: sire:local/echo
          - id: c
            tool: sire:local/echo
            needs:
              - nope
        """
    )
    assert (error.line, error.path) == (10, "steps[2].needs[0]")


def test_a_step_needing_itself_is_reported_at_that_need() -> None:
    error = plain_error(
        """
        id: demo
        steps:
          - id: a
            tool: sire:local/echo
            needs: [a]
        """
    )
    assert error.line == 5
    assert error.path == "steps[0].needs[0]"
    assert error.reason == "a step cannot need itself"


def assert_real_cycle(cycle: list[str], deps: dict[str, set[str]]) -> None:
    assert len(cycle) == len(set(cycle[:-1])) + 1
    assert cycle[0] == cycle[-1]
    for node, nxt in itertools.pairwise(cycle):
        assert nxt in deps[node], f"{node} does not depend on {nxt}"


def test_a_cycle_through_needs_is_named_in_full() -> None:
    with pytest.raises(CycleError) as caught:
        parse_workflow(
            yaml_text(
                """
                id: demo
                steps:
                  - id: a
                    tool: sire:local/echo
                    needs: [b]
                  - id: b
                    tool: sire:local/echo
                    needs: [c]
                  - id: c
                    tool: sire:local/echo
                    needs: [a]
                """
            ),
            source=SOURCE,
        )
    error = caught.value
    assert len(error.cycle) == 4
    assert set(error.cycle) == {"a", "b", "c"}
    assert_real_cycle(error.cycle, {"a": {"b"}, "b": {"c"}, "c": {"a"}})
    first = {"a": (3, "steps[0]"), "b": (6, "steps[1]"), "c": (9, "steps[2]")}
    assert (error.file, error.line, error.path) == (SOURCE, *first[error.cycle[0]])
    assert " -> ".join(error.cycle) in error.reason


def test_a_cycle_made_only_of_template_references_is_a_cycle_error() -> None:
    with pytest.raises(CycleError) as caught:
        parse_workflow(
            yaml_text(
                """
                id: demo
                steps:
                  - id: a
                    tool: sire:local/echo
                    with: {x: "{{ steps.b.output }}"}
                  - id: b
                    tool: sire:local/echo
                    if: "{{ steps.a.output.ok }}"
                """
            ),
            source=SOURCE,
        )
    error = caught.value
    assert len(error.cycle) == 3
    assert_real_cycle(error.cycle, {"a": {"b"}, "b": {"a"}})
    first = {"a": (3, "steps[0]"), "b": (6, "steps[1]")}
    assert (error.line, error.path) == first[error.cycle[0]]


def test_a_step_reading_its_own_output_is_reported_at_the_step() -> None:
    error = plain_error(
        """
        id: demo
        steps:
          - id: a
            tool: sire:local/echo
          - id: b
            tool: sire:local/echo
            with: {x: "{{ steps.b.output }}"}
        """
    )
    assert (error.line, error.path) == (5, "steps[1]")
    assert error.reason == "step 'b' reads its own output"


# -- templates --------------------------------------------------------------------------


def test_a_template_reading_an_unknown_step_is_reported_at_the_template() -> None:
    error = plain_error(
        """
        id: demo
        steps:
          - id: a
            tool: sire:local/echo
            with:
              greeting: hello
              text: "{{ steps.ghost.output.text }}"
        """
    )
    assert error.line == 7
    assert error.path == "steps[0].with.text"
    assert error.reason == "template reads unknown step 'ghost'"


def test_an_output_reading_an_unknown_step_is_reported_at_the_output() -> None:
    error = plain_error(
        """
        id: demo
        steps:
          - id: a
            tool: sire:local/echo
        outputs:
          x: "{{ steps.ghost.output }}"
        """
    )
    assert (error.line, error.path) == (6, "outputs.x")
    assert error.reason == "template reads unknown step 'ghost'"


def test_a_template_reading_an_undeclared_input_is_reported_at_the_template() -> None:
    error = plain_error(
        """
        id: demo
        inputs:
          name: {type: string}
        steps:
          - id: a
            tool: sire:local/echo
            with:
              text: "Hello {{ inputs.nmae }}"
        """
    )
    assert error.line == 8
    assert error.path == "steps[0].with.text"
    assert error.reason == "template reads undeclared input 'nmae'"


def test_an_unknown_top_level_name_is_reported_at_the_template() -> None:
    error = plain_error(
        """
        id: demo
        steps:
          - id: a
            tool: sire:local/echo
            if: "{{ enabled }}"
        """
    )
    assert error.line == 5
    assert error.path == "steps[0].if"
    assert error.reason.startswith("unknown name 'enabled' in template")
    assert "inputs" in error.reason


def test_item_outside_for_each_is_an_unknown_name() -> None:
    error = plain_error(
        """
        id: demo
        steps:
          - id: a
            tool: sire:local/echo
            with:
              values: [first, "{{ item }}"]
        """
    )
    assert error.line == 6
    assert error.path == "steps[0].with.values[1]"
    assert error.reason.startswith("unknown name 'item' in template")


def test_index_outside_for_each_is_an_unknown_name() -> None:
    error = plain_error(
        """
        id: demo
        steps:
          - id: a
            tool: sire:local/echo
            with:
              n: "{{ index + 1 }}"
        """
    )
    assert (error.line, error.path) == (6, "steps[0].with.n")
    assert error.reason.startswith("unknown name 'index' in template")


def test_a_with_that_is_not_a_mapping_is_reported_at_with() -> None:
    error = plain_error(
        """
        id: demo
        steps:
          - id: a
            tool: sire:local/echo
            with: [1, 2]
        """
    )
    assert (error.line, error.path) == (5, "steps[0].with")


def test_item_is_unknown_in_the_for_each_expression_itself() -> None:
    error = plain_error(
        """
        id: demo
        steps:
          - id: a
            tool: sire:local/echo
            for_each: "{{ item }}"
        """
    )
    assert (error.line, error.path) == (5, "steps[0].for_each")
    assert error.reason.startswith("unknown name 'item' in template")


def test_a_template_syntax_error_is_reported_at_the_template() -> None:
    error = plain_error(
        """
        id: demo
        steps:
          - id: a
            tool: sire:local/echo
            with:
              x: "{{ 1 + }}"
        """
    )
    assert error.line == 6
    assert error.path == "steps[0].with.x"
    assert error.reason.startswith("template syntax error: ")


def test_dynamic_steps_access_is_reported_at_the_template() -> None:
    error = plain_error(
        """
        id: demo
        inputs:
          which: {type: string}
        steps:
          - id: a
            tool: sire:local/echo
            with:
              x: "{{ steps[inputs.which].output }}"
        """
    )
    assert error.line == 8
    assert error.path == "steps[0].with.x"
    assert "literal name" in error.reason


def test_reading_steps_as_a_whole_is_reported_at_the_template() -> None:
    error = plain_error(
        """
        id: demo
        steps:
          - id: a
            tool: sire:local/echo
            with:
              x: "{{ steps | list }}"
        """
    )
    assert (error.line, error.path) == (6, "steps[0].with.x")
    assert "steps.<id>" in error.reason


# -- fields with their own syntax --------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("nope", "is not a tool URI"),
        ("sire:", "names no tool"),
        ("mcp:srv#", "invalid tool name ''"),
        ("mcp:#add", "names no server or target"),
        ("mcp:http://host/mcp", "names no tool"),
        ("Sire:local/echo", "is not a tool URI"),
    ],
)
def test_a_malformed_tool_uri_is_reported_at_the_tool(uri: str, why: str) -> None:
    error = plain_error(
        f"""
        id: demo
        steps:
          - id: a
            tool: sire:local/echo
          - id: b
            tool: "{uri}"
        """
    )
    assert error.line == 6
    assert error.path == "steps[1].tool"
    assert why in error.reason
    assert uri in error.reason


def test_a_bad_duration_is_reported_at_the_timeout() -> None:
    error = plain_error(
        """
        id: demo
        steps:
          - id: a
            tool: sire:local/echo
            timeout: 3x
        """
    )
    assert error.line == 5
    assert error.path == "steps[0].timeout"
    assert "'3x' is not a duration" in error.reason


def test_a_bad_default_duration_is_reported_inside_defaults() -> None:
    error = plain_error(
        """
        id: demo
        defaults:
          retry:
            initial_interval: soon
        steps:
          - id: a
            tool: sire:local/echo
        """
    )
    assert (error.line, error.path) == (4, "defaults.retry.initial_interval")


def test_a_server_with_both_url_and_command_is_reported_at_the_server() -> None:
    error = plain_error(
        """
        id: demo
        servers:
          calc:
            url: http://localhost:8000/mcp
            command: [calc-server]
        steps:
          - id: a
            tool: mcp:calc#add
        """
    )
    assert error.line == 3
    assert error.path == "servers.calc"
    assert "exactly one of 'url'" in error.reason


def test_a_server_with_neither_url_nor_command_is_reported_at_the_server() -> None:
    error = plain_error(
        """
        id: demo
        servers:
          calc: {}
        steps:
          - id: a
            tool: mcp:calc#add
        """
    )
    assert (error.line, error.path) == (3, "servers.calc")


def test_max_concurrency_without_for_each_is_reported_at_the_step() -> None:
    error = plain_error(
        """
        id: demo
        steps:
          - id: a
            tool: sire:local/echo
          - id: b
            tool: sire:local/echo
            max_concurrency: 4
        """
    )
    assert error.line == 5
    assert error.path == "steps[1]"
    assert error.reason == "max_concurrency on a step needs for_each"


# -- files ------------------------------------------------------------------------------


def test_a_file_that_is_not_utf8_is_reported_with_its_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    data = "id: demo\ndescription: café\n".encode("latin-1")
    path.write_bytes(data)
    with pytest.raises(DefinitionError) as caught:
        load_workflow(path)
    error = caught.value
    assert type(error) is DefinitionError
    assert (error.file, error.line, error.path) == (str(path), None, "")
    assert error.reason == f"file is not UTF-8 (byte {data.index(0xE9)})"


def test_a_missing_file_is_reported_with_its_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(DefinitionError) as caught:
        load_workflow(path)
    error = caught.value
    assert type(error) is DefinitionError
    assert (error.file, error.line, error.path) == (str(path), None, "")
    assert error.reason == "workflow file not found"
    assert str(error) == f"{path}: workflow file not found"


def test_errors_from_a_loaded_file_carry_its_path(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text("id: demo\nsteps:\n  - id: a\n    tool: nope\n")
    with pytest.raises(DefinitionError) as caught:
        load_workflow(path, cache_dir=tmp_path / "cache")
    error = caught.value
    assert (error.file, error.line, error.path) == (str(path), 4, "steps[0].tool")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


# -- the message ------------------------------------------------------------------------

LOCATED = {
    "malformed": "id: demo\nsteps:\n  - id: a\n    tool: sire: local\n",
    "empty": "",
    "duplicate key": "id: demo\nid: again\nsteps: []\n",
    "missing tool": "id: demo\nsteps:\n  - id: a\n",
    "misspelt": "id: demo\nsteps:\n  - id: a\n    tol: sire:local/echo\n",
    "wrong type": "id: demo\nmax_concurrency: many\nsteps:\n  - {id: a, tool: sire:x/y}\n",
    "bad step id": "id: demo\nsteps:\n  - {id: 1abc, tool: sire:x/y}\n",
    "bad workflow id": "id: Demo!\nsteps:\n  - {id: a, tool: sire:x/y}\n",
    "unknown need": "id: demo\nsteps:\n  - {id: a, tool: sire:x/y, needs: [b]}\n",
    "cycle": "id: demo\nsteps:\n  - {id: a, tool: sire:x/y, needs: [a]}\n",
    "template": "id: demo\nsteps:\n  - {id: a, tool: sire:x/y, if: '{{ nope }}'}\n",
    "syntax": "id: demo\nsteps:\n  - {id: a, tool: sire:x/y, if: '{{ ( }}'}\n",
    "uri": "id: demo\nsteps:\n  - {id: a, tool: 'mcp:srv#'}\n",
    "duration": "id: demo\nsteps:\n  - {id: a, tool: sire:x/y, timeout: 3x}\n",
    "server": "id: demo\nservers: {s: {}}\nsteps:\n  - {id: a, tool: sire:x/y}\n",
    "bomb": "id: demo\na: &a [x, x]\n"
    + "".join(
        f"{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, n in zip("abcdefg", "bcdefgh", strict=True)
    ),
}


@pytest.mark.parametrize("text", LOCATED.values(), ids=LOCATED.keys())
def test_the_message_is_one_line_starting_with_file_and_line(text: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_workflow(text, source=SOURCE)
    error = caught.value
    message = str(error)
    assert "\n" not in message
    assert message.startswith(f"{SOURCE}:{error.line}: ")
    assert isinstance(error.line, int)
    assert error.line >= 1
    assert error.reason in message
    if error.path:
        hint = f"; {error.hint}" if error.hint else ""
        assert message.endswith(f" at {error.path}{hint}")


def test_a_text_without_a_source_is_called_workflow_in_messages() -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_workflow("id: demo\nsteps:\n  - {id: a, tool: nope}\n")
    assert caught.value.file is None
    assert str(caught.value).startswith("<workflow>:3: ")
