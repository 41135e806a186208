"""`sire workflow compile MODULE:ATTR`: YAML from the SDK, and one sentence for a bad target."""

from __future__ import annotations

import itertools
import runpy
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sire.model.loader import load_workflow

from .conftest import EXAMPLES

GREET = str(EXAMPLES / "sdk" / "greet.py")
_names = itertools.count()

FLOW = """\
from sire.sdk import Workflow
from sire.sdk.tools import echo

wf = Workflow("tiny")
wf.step("hi", echo(text="hi"))

def make():
    return wf

def broken():
    raise RuntimeError("no workflow today")

def not_a_workflow():
    return 42

number = 7
"""


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Write a module into a fresh current directory; return its (unique) name."""
    monkeypatch.chdir(tmp_path)

    def write(source: str = FLOW) -> str:
        name = f"sire_sdk_flow_{next(_names)}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        return name

    return write


def test_compile_prints_the_yaml_of_the_workflow(sire: Any) -> None:
    result = sire("workflow", "compile", f"{GREET}:workflow")
    assert result.code == 0, result.err
    assert result.out == runpy.run_path(GREET)["workflow"].to_yaml()
    assert result.out.startswith("id: greet-and-save\n")


def test_compile_imports_a_module_from_the_current_directory(sire: Any, module: Any) -> None:
    name = module()
    result = sire("workflow", "compile", f"{name}:wf")
    assert result.code == 0, result.err
    assert (
        result.out
        == "id: tiny\nsteps:\n  - id: hi\n    tool: sire:local/echo\n    with: {text: hi}\n"
    )


def test_compile_calls_a_function_that_returns_a_workflow(sire: Any, module: Any) -> None:
    name = module()
    assert sire("workflow", "compile", f"{name}:make").out.startswith("id: tiny\n")


def test_compile_writes_a_file_that_loads_to_the_same_model(sire: Any, tmp_path: Path) -> None:
    out = tmp_path / "greet.yaml"
    result = sire("workflow", "compile", f"{GREET}:workflow", "--output", str(out))
    assert result.code == 0, result.err
    assert result.out == f"wrote {out}  (greet-and-save, 2 steps)\n"
    compiled = load_workflow(out)
    hello = load_workflow(EXAMPLES / "hello.yaml")
    assert compiled.steps == hello.steps
    assert compiled.outputs == hello.outputs


def test_compile_json_is_one_document(sire: Any, tmp_path: Path) -> None:
    result = sire("workflow", "compile", f"{GREET}:workflow", "--json")
    assert result.code == 0
    doc = result.json()
    assert doc["workflow_id"] == "greet-and-save"
    assert doc["steps"] == 2
    assert doc["output"] is None
    assert doc["yaml"].startswith("id: greet-and-save\n")


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("{name}", "'{name}' is not MODULE:ATTR"),
        ("{name}:", "'{name}:' is not MODULE:ATTR"),
        ("no_such_module_here:wf", "no module named 'no_such_module_here'"),
        ("{name}:missing", "module '{name}' has no attribute 'missing'"),
        ("{name}:number", "'{name}:number' is of type int, not a sire.sdk.Workflow"),
        ("{name}:not_a_workflow", "returned a value of type int, not a sire.sdk.Workflow"),
        (
            "{name}:broken",
            "{name}.py:11: calling '{name}:broken' failed: RuntimeError: no workflow today",
        ),
        ("nowhere/flows.py:wf", "no Python file 'nowhere/flows.py'"),
    ],
)
def test_a_bad_target_is_one_sentence_and_exit_2(
    sire: Any, module: Any, target: str, message: str
) -> None:
    name = module()
    result = sire("workflow", "compile", target.format(name=name))
    assert result.code == 2
    assert result.out == ""
    assert result.err.startswith("sire: error: ")
    assert message.format(name=name) in result.err
    assert result.err.count("\n") == 1
    assert "Traceback" not in result.err


def test_a_module_that_fails_to_import_is_reported_at_its_line(sire: Any, module: Any) -> None:
    name = module("import os\nraise ValueError('bad config')\n")
    result = sire("workflow", "compile", f"{name}:wf")
    assert result.code == 2
    assert result.err == (
        f"sire: error: {name}.py:2: importing '{name}' failed: ValueError: bad config\n"
    )


def test_an_invalid_sdk_workflow_is_a_definition_error_at_its_python_line(
    sire: Any, module: Any
) -> None:
    source = """\
    from sire.sdk import Workflow
    wf = Workflow("bad")
    a = wf.step("a", "sire:local/echo", {"x": "{{ steps.b.output }}"})
    b = wf.step("b", "sire:local/echo", {"x": "{{ steps.a.output }}"})
    """
    name = module(source)
    result = sire("workflow", "compile", f"{name}:wf", "--json")
    assert result.code == 2
    error = result.json()["error"]
    assert error["type"] == "CycleError"
    assert (error["file"], error["line"], error["path"]) == (f"{name}.py", 3, "steps[0]")


def test_an_unwritable_output_is_exit_2(sire: Any, tmp_path: Path) -> None:
    out = tmp_path / "missing-dir" / "greet.yaml"
    result = sire("workflow", "compile", f"{GREET}:workflow", "-o", str(out))
    assert result.code == 2
    assert f"--output {out}: cannot write it" in result.err
