"""A valid workflow loads into frozen values; load_workflow caches by content."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest

import sire.model.loader as loader
from sire.errors import DefinitionError
from sire.model.loader import load_workflow, parse_workflow, read_yaml
from sire.model.uri import ToolURI
from sire.model.workflow import DEFAULT_MAX_CONCURRENCY, RetryPolicy, ServerSpec, Workflow

FULL = textwrap.dedent(
    """\
    id: full-demo
    description: Every feature at once.
    inputs:
      name: {type: string, default: world}
      count: {type: integer}
    servers:
      calc: {url: "http://localhost:8000/mcp", headers: {Authorization: "Bearer t"}}
      time: {command: [mcp-server-time, --local], env: {TZ: UTC}, cwd: /tmp}
    defaults:
      retry: {max_attempts: 4, initial_interval: 250ms, backoff: 3, max_interval: 1m30s}
      timeout: 2
    max_concurrency: 8
    steps:
      - id: greet
        tool: sire:local/text.template
        description: Says hello.
        with: {template: "Hello, {{ inputs.name }}!"}
      - id: save
        tool: sire:local/file.write
        needs: [greet]
        with:
          path: out/greeting.txt
          content: "{{ steps.greet.output.text }} {{ .secrets.suffix }}"
        retry: {max_attempts: 5}
        timeout: 250ms
      - id: fan
        tool: mcp:calc#math.add
        for_each: "{{ steps.greet.output.items }}"
        max_concurrency: 3
        with: {a: "{{ item }}", b: "{{ index }}", c: "{{ steps.save.output.path }}"}
        if: "{{ inputs.count > 0 }}"
      - id: join
        tool: "jsonrpc:http://host/rpc#math.add"
        needs: [fan, save]
        needs_any: true
        with: {x: "{{ steps.greet.output }}", y: "{{ steps.fan.output }}", z: "{{ steps.save }}"}
        input_schema: {type: object}
        output_schema: {type: object, required: [sum]}
        timeout: 1m30s
      - id: tail
        tool: sire:local/echo
    outputs:
      path: "{{ steps.save.output.path }}"
      secret: "{{ inputs.name | default(.secrets.fallback) }}"
    """
)


@pytest.fixture(scope="module")
def full() -> Workflow:
    return parse_workflow(FULL, source="full.yaml")


def test_a_workflow_using_every_feature_loads(full: Workflow) -> None:
    assert full.id == "full-demo"
    assert full.description == "Every feature at once."
    assert [s.id for s in full.steps] == ["greet", "save", "fan", "join", "tail"]
    assert full.inputs == {
        "name": {"type": "string", "default": "world"},
        "count": {"type": "integer"},
    }
    assert full.max_concurrency == 8
    assert full.source == "full.yaml"
    assert full.digest == hashlib.sha256(FULL.encode()).hexdigest()
    assert full.outputs == {
        "path": "{{ steps.save.output.path }}",
        "secret": "{{ inputs.name | default(.secrets.fallback) }}",
    }


def test_servers_become_server_specs(full: Workflow) -> None:
    assert full.servers == {
        "calc": ServerSpec(url="http://localhost:8000/mcp", headers={"Authorization": "Bearer t"}),
        "time": ServerSpec(command=("mcp-server-time", "--local"), env={"TZ": "UTC"}, cwd="/tmp"),
    }


def test_tool_uris_are_parsed(full: Workflow) -> None:
    assert full.step("greet").tool == ToolURI("sire", "local", "text.template", "/")
    assert full.step("fan").tool == ToolURI("mcp", "calc", "math.add", "#")
    join = full.step("join").tool
    assert join == ToolURI("jsonrpc", "http://host/rpc", "math.add", "#")
    assert join.is_url


def test_step_fields_are_carried_over(full: Workflow) -> None:
    greet, save, fan, join, tail = full.steps
    assert greet.description == "Says hello."
    assert greet.params == {"template": "Hello, {{ inputs.name }}!"}
    assert fan.for_each == "{{ steps.greet.output.items }}"
    assert fan.max_concurrency == 3
    assert fan.when == "{{ inputs.count > 0 }}"
    assert join.needs_any is True
    assert save.needs_any is False
    assert join.input_schema == {"type": "object"}
    assert join.output_schema == {"type": "object", "required": ["sum"]}
    assert tail.input_schema is None
    assert tail.when is None
    assert tail.for_each is None


def test_workflow_defaults_apply_to_steps_that_say_nothing(full: Workflow) -> None:
    default = RetryPolicy(max_attempts=4, initial_interval=0.25, backoff=3.0, max_interval=90.0)
    for step_id in ("greet", "fan", "tail"):
        assert full.step(step_id).retry == default
    for step_id in ("greet", "fan", "tail"):
        assert full.step(step_id).timeout == 2.0


def test_steps_that_override_the_defaults_keep_their_own_values(full: Workflow) -> None:
    # A step's `retry:` replaces the default policy whole; unset fields take the
    # format's own defaults, not the workflow's.
    assert full.step("save").retry == RetryPolicy(max_attempts=5)
    assert full.step("save").timeout == 0.25
    assert full.step("join").retry.max_attempts == 4
    assert full.step("join").timeout == 90.0


def test_without_defaults_a_step_is_tried_once_with_no_timeout() -> None:
    workflow = parse_workflow("id: w\nsteps:\n  - {id: a, tool: sire:local/echo}\n")
    (step,) = workflow.steps
    assert step.retry == RetryPolicy()
    assert step.retry.max_attempts == 1
    assert step.timeout is None
    assert workflow.max_concurrency == DEFAULT_MAX_CONCURRENCY
    assert workflow.outputs is None
    assert workflow.servers == {}
    assert workflow.inputs == {}


def test_depends_is_needs_first_then_template_references_in_step_order(full: Workflow) -> None:
    assert full.step("greet").depends == ()
    assert full.step("save").needs == ("greet",)
    assert full.step("save").depends == ("greet",)
    assert full.step("fan").needs == ()
    assert full.step("fan").depends == ("greet", "save")
    assert full.step("join").needs == ("fan", "save")
    assert full.step("join").depends == ("fan", "save", "greet")
    assert full.step("tail").depends == ()


def test_template_references_are_ordered_by_step_not_by_appearance() -> None:
    workflow = parse_workflow(
        textwrap.dedent(
            """\
            id: w
            steps:
              - {id: a, tool: sire:local/echo}
              - {id: b, tool: sire:local/echo}
              - {id: c, tool: sire:local/echo}
              - id: d
                tool: sire:local/echo
                needs: [c]
                with:
                  first: "{{ steps.c.output }} {{ steps.b.output }}"
                  second: "{{ steps['a'].output }} {{ steps.b.output }}"
            """
        )
    )
    assert workflow.step("d").depends == ("c", "a", "b")


def test_the_dot_secrets_synonym_is_accepted_and_kept_verbatim(full: Workflow) -> None:
    assert full.step("save").params is not None
    assert full.step("save").params["content"] == (
        "{{ steps.greet.output.text }} {{ .secrets.suffix }}"
    )


def test_a_step_without_with_has_no_params(full: Workflow) -> None:
    assert full.step("tail").params is None


def test_an_empty_with_is_an_empty_mapping_not_none() -> None:
    workflow = parse_workflow("id: w\nsteps:\n  - {id: a, tool: sire:local/echo, with: {}}\n")
    assert workflow.steps[0].params == {}


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("250ms", 0.25), ("1m30s", 90.0), ("2", 2.0), ("1.5", 1.5), ("1h", 3600.0), ("0", 0.0)],
)
def test_durations_are_read_in_seconds(written: str, seconds: float) -> None:
    workflow = parse_workflow(
        f"id: w\nsteps:\n  - {{id: a, tool: sire:local/echo, timeout: {written}}}\n"
    )
    assert workflow.steps[0].timeout == seconds


def test_lines_give_the_line_of_every_node(full: Workflow) -> None:
    assert full.lines["steps[1].with.content"] == 23
    assert full.lines["steps[1]"] == 18
    assert full.lines["steps[1].needs[0]"] == 20
    assert full.lines["id"] == 1
    assert full.lines[""] == 1
    assert full.line("steps[1].with.content") == 23
    assert full.line("steps[1].with.content.nothing[3]") == 23
    assert full.line("steps[9]") == full.lines["steps"]


def test_step_looks_up_by_id(full: Workflow) -> None:
    assert full.step("fan").id == "fan"
    with pytest.raises(KeyError):
        full.step("ghost")


def test_a_workflow_is_frozen(full: Workflow) -> None:
    with pytest.raises(AttributeError):
        full.id = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        full.steps[0].id = "other"  # type: ignore[misc]


def test_read_yaml_records_key_and_item_lines() -> None:
    data, lines = read_yaml("a:\n  - 1\n  - {b: 2}\nc: x\n")
    assert data == {"a": [1, {"b": 2}], "c": "x"}
    assert lines == {"": 1, "a": 1, "a[0]": 2, "a[1]": 3, "a[1].b": 3, "c": 4}


def test_only_true_and_false_are_booleans_as_in_yaml_1_2() -> None:
    data, _ = read_yaml("on: yes\noff: no\nt: true\nf: False\n1: one\n")
    assert data == {"on": "yes", "off": "no", "t": True, "f": False, "1": "one"}


def test_yaml_anchors_and_aliases_are_expanded() -> None:
    workflow = parse_workflow(
        textwrap.dedent(
            """\
            id: w
            steps:
              - id: a
                tool: sire:local/echo
                retry: &patient {max_attempts: 9}
              - id: b
                tool: sire:local/echo
                retry: *patient
            """
        )
    )
    assert workflow.step("a").retry == workflow.step("b").retry == RetryPolicy(max_attempts=9)


def test_a_key_may_override_one_merged_with_yaml_merge_keys() -> None:
    workflow = parse_workflow(
        textwrap.dedent(
            """\
            id: w
            steps:
              - &base {id: a, tool: sire:local/echo, timeout: 5s}
              - <<: *base
                id: b
            """
        )
    )
    assert workflow.step("b").timeout == 5.0
    assert workflow.step("b").tool == workflow.step("a").tool


# -- the cache ---------------------------------------------------------------------------


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    path = tmp_path / "flow.yaml"
    path.write_text(FULL, encoding="utf-8")
    return path


def test_load_workflow_equals_parse_workflow(flow: Path) -> None:
    assert load_workflow(flow) == parse_workflow(FULL, source=str(flow))


def test_a_cached_workflow_loads_without_parsing(
    flow: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    first = load_workflow(flow, cache_dir=cache)
    entries = list(cache.iterdir())
    assert len(entries) == 1
    assert entries[0].name.startswith(first.digest)

    def no_parsing(*args: object, **kwargs: object) -> Workflow:
        raise AssertionError("parse_workflow called on a cache hit")

    monkeypatch.setattr(loader, "parse_workflow", no_parsing)
    second = load_workflow(flow, cache_dir=cache)
    assert second == first
    assert second is not first


def test_a_cached_workflow_loaded_from_another_path_names_that_path(
    flow: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    load_workflow(flow, cache_dir=cache)
    copy = tmp_path / "copy.yaml"
    copy.write_bytes(flow.read_bytes())
    monkeypatch.setattr(loader, "parse_workflow", None)
    assert load_workflow(copy, cache_dir=cache).source == str(copy)


def test_a_corrupt_cache_entry_is_ignored_and_replaced(flow: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = load_workflow(flow, cache_dir=cache)
    (entry,) = cache.iterdir()
    entry.write_bytes(b"\x80\x04not a pickle")
    assert load_workflow(flow, cache_dir=cache) == first
    (entry,) = cache.iterdir()
    assert entry.read_bytes() != b"\x80\x04not a pickle"


def test_a_cache_entry_holding_something_else_is_ignored(flow: Path, tmp_path: Path) -> None:
    import pickle

    cache = tmp_path / "cache"
    first = load_workflow(flow, cache_dir=cache)
    (entry,) = cache.iterdir()
    entry.write_bytes(pickle.dumps({"not": "a workflow"}))
    assert load_workflow(flow, cache_dir=cache) == first


def test_a_changed_file_is_parsed_again(flow: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = load_workflow(flow, cache_dir=cache)
    flow.write_text(FULL.replace("Every feature at once.", "Changed."), encoding="utf-8")
    second = load_workflow(flow, cache_dir=cache)
    assert second.description == "Changed."
    assert second.digest != first.digest
    assert len(list(cache.iterdir())) == 2


def test_an_unusable_cache_directory_only_costs_speed(flow: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    assert load_workflow(flow, cache_dir=blocker) == load_workflow(flow)


def test_an_invalid_file_is_not_cached(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("id: w\nsteps: []\n")
    cache = tmp_path / "cache"
    with pytest.raises(DefinitionError):
        load_workflow(path, cache_dir=cache)
    assert not cache.exists() or not any(cache.iterdir())
