"""The command line: exit statuses, one-line errors, `--json` shapes, every command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_run_prints_the_execution_id_first_and_the_outputs_last(sire: Any, tmp_path: Path) -> None:
    result = sire(
        "run", str(EXAMPLES / "hello.yaml"), "-i", "name=Ada", "--workspace", str(tmp_path)
    )
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith("execution ")
    assert "workflow greet-and-save" in lines[0]
    outputs = json.loads(result.out[result.out.index("{") :])
    assert outputs == {"greeting": "Hello, Ada!", "path": "out/greeting.txt"}
    assert (tmp_path / "out" / "greeting.txt").read_text() == "Hello, Ada!\n"


def test_run_json_is_one_document_describing_the_execution(sire: Any, tmp_path: Path) -> None:
    result = sire("run", str(EXAMPLES / "hello.yaml"), "--json", "--workspace", str(tmp_path))
    assert result.code == 0
    doc = result.json()
    assert set(doc) == {
        "execution_id",
        "workflow_id",
        "status",
        "inputs",
        "outputs",
        "error",
        "workspace",
        "created_at",
        "updated_at",
        "duration_ms",
        "steps",
    }
    assert doc["status"] == "completed"
    assert doc["inputs"] == {"name": "world"}
    assert doc["steps"]["greet"]["status"] == "completed"
    assert doc["steps"]["greet"]["attempts"] == 1
    assert doc["steps"]["save"]["output"]["path"] == "out/greeting.txt"
    assert len(doc["execution_id"]) == 26


def test_workflow_run_is_the_same_command_as_run(sire: Any, tmp_path: Path) -> None:
    result = sire(
        "workflow", "run", str(EXAMPLES / "hello.yaml"), "--json", "--workspace", str(tmp_path)
    )
    assert result.code == 0
    assert result.json()["outputs"]["greeting"] == "Hello, world!"


def test_a_failed_workflow_exits_1_and_says_which_step(sire: Any, write: Any) -> None:
    path = write("""
        id: broken
        steps:
          - {id: read, tool: "sire:local/file.read", with: {path: missing.txt}}
          - {id: after, tool: "sire:local/echo", needs: [read]}
    """)
    result = sire("run", str(path), "--workspace", str(path.parent))
    assert result.code == 1
    assert "failed" in result.out
    assert "step 'read' failed" in result.out
    doc = sire("run", str(path), "--json", "--workspace", str(path.parent)).json()
    assert doc["status"] == "failed"
    assert doc["steps"]["after"]["status"] == "skipped"


def test_a_definition_error_exits_2_with_file_and_line(sire: Any, write: Any) -> None:
    path = write("""
        id: bad
        steps:
          - {id: a, tool: "sire:local/echo"}
          - {id: b, tool: "sire:local/echo", needs: [nope]}
    """)
    result = sire("run", str(path))
    assert result.code == 2
    assert result.err.strip() == (
        f"sire: error: {path}:5: unknown step 'nope' in needs at steps[1].needs[0]"
    )
    assert "Traceback" not in result.err


def test_an_unknown_builtin_tool_is_a_definition_error_located_at_its_step(
    sire: Any, write: Any
) -> None:
    path = write("""
        id: bad
        steps:
          - id: a
            tool: sire:local/no.such.tool
    """)
    result = sire("workflow", "validate", str(path), "--json")
    assert result.code == 2
    (entry,) = result.json()["files"]
    assert entry["error"]["line"] == 5
    assert entry["error"]["path"] == "steps[0].tool"
    assert "no tool 'no.such.tool'" in entry["error"]["reason"]


def test_an_unknown_scheme_is_a_definition_error(sire: Any, write: Any) -> None:
    path = write("""
        id: bad
        steps:
          - {id: a, tool: "nosuch:server#tool"}
    """)
    result = sire("run", str(path))
    assert result.code == 2
    assert "unknown tool scheme 'nosuch:'" in result.err


def test_an_unknown_server_name_is_a_definition_error(sire: Any, write: Any) -> None:
    path = write("""
        id: bad
        servers:
          calc: {url: "http://127.0.0.1:9/mcp"}
        steps:
          - {id: a, tool: "mcp:calculator#add"}
    """)
    result = sire("workflow", "validate", str(path), "--json")
    assert result.code == 2
    error = result.json()["files"][0]["error"]
    assert error["line"] == 6
    assert error["reason"].startswith("unknown server 'calculator' in 'mcp:calculator#add'")
    assert "declared: calc" in error["reason"]


def test_bad_inputs_exit_2_with_one_clear_line(sire: Any, write: Any) -> None:
    path = write("""
        id: typed
        inputs:
          n: {type: integer}
          name: {type: string, default: x}
        steps:
          - {id: a, tool: "sire:local/echo", with: {n: "{{ inputs.n }}"}}
    """)
    cases = {
        ("-i", "n=three"): "input 'n' expects an integer, got 'three'",
        ("-i", "m=1"): "workflow 'typed' has no input 'm' (declared: n, name)",
        ("-i", "n"): "'-i n' is not of the form name=value",
        (): "missing required input 'n'",
    }
    for args, message in cases.items():
        result = sire("run", str(path), *args)
        assert result.code == 2, args
        assert message in result.err, (args, result.err)
        assert len(result.err.strip().splitlines()) == 1


def test_inputs_are_typed_by_their_schema(sire: Any, write: Any, tmp_path: Path) -> None:
    path = write("""
        id: typed
        inputs:
          n: {type: integer}
          ratio: {type: number, default: 0.5}
          on: {type: boolean, default: false}
          tags: {type: array, default: []}
          name: {type: string, default: x}
        steps:
          - id: a
            tool: sire:local/echo
            with: {n: "{{ inputs.n }}", tags: "{{ inputs.tags }}", name: "{{ inputs.name }}",
                   ratio: "{{ inputs.ratio }}", on: "{{ inputs.on }}"}
    """)
    result = sire(
        "run", str(path), "-i", "n=3", "-i", "tags=[1,2]", "-i", "name=007", "-i", "on=true",
        "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    output = result.json()["steps"]["a"]["output"]
    assert output == {"n": 3, "tags": [1, 2], "name": "007", "ratio": 0.5, "on": True}


def test_inputs_file_supplies_inputs_and_flags_override_it(
    sire: Any, write: Any, tmp_path: Path
) -> None:
    path = write("""
        id: typed
        inputs:
          a: {type: string}
          b: {type: integer}
        steps:
          - {id: s, tool: "sire:local/echo", with: {a: "{{ inputs.a }}", b: "{{ inputs.b }}"}}
    """)
    inputs = tmp_path / "inputs.yaml"
    inputs.write_text("a: from-file\nb: 1\n")
    result = sire("run", str(path), "--inputs-file", str(inputs), "-i", "b=2", "--json")
    assert result.json()["outputs"] == {"s": {"a": "from-file", "b": 2}}


def test_a_usage_error_exits_2(sire: Any) -> None:
    result = sire("run")
    assert result.code == 2
    assert "Missing argument" in result.err
    assert sire("run", "x.yaml", "--no-such-flag").code == 2


def test_a_missing_file_exits_2_and_json_errors_are_documents(sire: Any) -> None:
    result = sire("run", "does-not-exist.yaml", "--json")
    assert result.code == 2
    assert result.json() == {
        "error": {
            "type": "DefinitionError",
            "message": "does-not-exist.yaml: workflow file not found",
            "file": "does-not-exist.yaml",
            "line": None,
            "path": "",
        },
        "exit_code": 2,
    }


def test_a_broken_config_is_an_environment_error_exit_3(
    sire: Any, sire_home: Path, tmp_path: Path
) -> None:
    (sire_home / "config.yaml").write_text("exec: {allow: rm}\n")
    result = sire("run", str(EXAMPLES / "hello.yaml"), "--workspace", str(tmp_path))
    assert result.code == 3
    assert "'exec.allow' must be a list of strings" in result.err


def test_validate_reports_every_file(sire: Any, write: Any) -> None:
    good = EXAMPLES / "hello.yaml"
    bad = write("id: x\nsteps: []\n", "bad.yaml")
    result = sire("workflow", "validate", str(good), str(bad))
    assert result.code == 2
    assert f"ok     {good}" in result.out
    assert f"{bad}:2:" in result.err
    doc = sire("workflow", "validate", str(good), "--json").json()
    assert doc == {
        "valid": True,
        "files": [{"file": str(good), "valid": True, "steps": 2}],
    }


def test_graph_renders_text_mermaid_and_dot(sire: Any) -> None:
    path = str(EXAMPLES / "fan-out.yaml")
    text = sire("workflow", "graph", path).out
    assert "layer 1:" in text
    assert "report    sire:local/text.template  <- biggest, smallest, total" in text
    mermaid = sire("workflow", "graph", path, "--format", "mermaid").out
    assert mermaid.startswith("flowchart TD")
    assert "  total --> report" in mermaid
    dot = sire("workflow", "graph", path, "--format", "dot").out
    assert dot.startswith('digraph "fan-out-join" {')
    assert '  "total" -> "report";' in dot
    doc = sire("workflow", "graph", path, "--json").json()
    assert doc["layers"] == [["biggest", "smallest", "total"], ["report"]]
    assert sire("workflow", "graph", path, "--format", "png").code == 2


def test_schema_prints_the_json_schema_of_the_format(sire: Any) -> None:
    result = sire("workflow", "schema")
    assert result.code == 0
    schema = result.json()
    assert schema["title"] == "Sire workflow"
    assert "steps" in schema["properties"]


def test_tool_list_shows_builtin_tools_with_schemas(sire: Any) -> None:
    result = sire("tool", "list", "--json")
    assert result.code == 0
    tools = {tool["name"]: tool for tool in result.json()["tools"]}
    assert {"echo", "text.template", "file.read", "file.write", "http.request"} <= set(tools)
    assert {"json.query", "sleep", "exec"} <= set(tools)
    assert tools["file.write"]["inputSchema"]["required"] == ["path", "content"]
    human = sire("tool", "list").out
    assert "sire:local/file.write" in human


def test_version_and_help(sire: Any) -> None:
    from sire import __version__

    assert sire("--version").out.strip() == f"sire {__version__}"
    assert "run" in sire("--help").out


#: Examples that need MCP servers from npm: tests/remote/test_interop.py runs them.
REMOTE_EXAMPLES = {"mcp-servers.yaml", "meeting-times.yaml"}


@pytest.mark.parametrize(
    "example",
    sorted(
        p.name
        for p in EXAMPLES.glob("*.yaml")
        if p.name not in REMOTE_EXAMPLES and not p.name.endswith(".test.yaml")
    ),
)
def test_every_example_runs_to_completion(sire: Any, example: str, tmp_path: Path) -> None:
    result = sire("run", str(EXAMPLES / example), "--json", "--workspace", str(tmp_path))
    assert result.code == 0, result.out
    assert result.json()["status"] == "completed"


def test_the_fan_out_example_joins_its_branches(sire: Any, tmp_path: Path) -> None:
    doc = sire("run", str(EXAMPLES / "fan-out.yaml"), "--json").json()
    assert doc["outputs"] == {
        "report": "8 numbers from 1 to 9, adding up to 31",
        "range": [1, 9],
    }


def test_the_files_example_writes_and_reads_one_file_per_item(sire: Any, tmp_path: Path) -> None:
    doc = sire("run", str(EXAMPLES / "files.yaml"), "--json", "--workspace", str(tmp_path)).json()
    assert doc["outputs"]["words"] == 21
    files = doc["outputs"]["files"]
    assert files == [
        "out/notes/0-durability.txt",
        "out/notes/1-concurrency.txt",
        "out/notes/2-templates.txt",
    ]
    assert all((tmp_path / f).is_file() for f in files)
    assert doc["steps"]["write/2"]["status"] == "completed"
