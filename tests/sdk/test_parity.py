"""SDK -> YAML -> run: the same outputs, step statuses and attempts as the hand-written YAML."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import EXAMPLES, FIXTURES

ROOT = Path(__file__).parents[2]
SIRE = [sys.executable, "-m", "sire"]

# (SDK target, hand-written YAML, whether it runs `exec`)
PAIRS = [
    pytest.param(f"{EXAMPLES}/sdk/greet.py:workflow", EXAMPLES / "hello.yaml", False, id="hello"),
    pytest.param(f"{FIXTURES}/examples_sdk.py:fan_out", EXAMPLES / "fan-out.yaml", False, id="fan"),
    pytest.param(f"{FIXTURES}/examples_sdk.py:files", EXAMPLES / "files.yaml", False, id="files"),
    pytest.param(f"{FIXTURES}/flaky.py:workflow", FIXTURES / "flaky.yaml", True, id="retry"),
]


def outcome(doc: dict[str, Any]) -> dict[str, Any]:
    """What a run must reproduce: status, outputs, and each step's status, attempts, output."""
    return {
        "status": doc["status"],
        "outputs": doc["outputs"],
        "steps": {
            key: (step["status"], step["attempts"], step["output"], step["error"])
            for key, step in doc["steps"].items()
        },
    }


@pytest.mark.parametrize(("target", "yaml_file", "runs_exec"), PAIRS)
def test_the_compiled_sdk_workflow_runs_as_the_hand_written_yaml(
    sire: Any,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    target: str,
    yaml_file: Path,
    runs_exec: bool,
) -> None:
    inputs: list[str] = []
    if runs_exec:
        inputs = ["-i", f"python={request.getfixturevalue('allow_python')}"]
    compiled = tmp_path / "compiled.yaml"
    assert sire("workflow", "compile", target, "-o", str(compiled)).code == 0
    runs = {}
    for name, path in (("yaml", yaml_file), ("sdk", compiled)):
        workspace = tmp_path / name
        workspace.mkdir()
        result = sire("run", str(path), *inputs, "--json", "--workspace", str(workspace))
        assert result.code == 0, result.out
        runs[name] = outcome(result.json())
    assert runs["sdk"] == runs["yaml"]
    if runs_exec:  # the retry really happened, in both
        assert runs["sdk"]["steps"]["flaky"][:2] == ("completed", 2)
        assert runs["sdk"]["steps"]["never"][0] == "skipped"


def test_the_sdk_example_compiles_and_runs_from_the_command_line(tmp_path: Path) -> None:
    env = {**os.environ, "SIRE_HOME": str(tmp_path / "home")}
    compiled = tmp_path / "greet.yaml"
    subprocess.run(
        [*SIRE, "workflow", "compile", "examples/sdk/greet.py:workflow", "-o", str(compiled)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    run = subprocess.run(
        [*SIRE, "run", str(compiled), "-i", "name=Ada", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["outputs"] == {
        "greeting": "Hello, Ada!",
        "path": "out/greeting.txt",
    }
    assert (tmp_path / "out" / "greeting.txt").read_text() == "Hello, Ada!\n"
