"""`limits.max_payload_bytes` at the command line: oversized inputs are refused before
anything is stored (exit 2); an oversized step output fails that step (exit 1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ECHO = """\
id: echo-it
inputs:
  text: {type: string}
steps:
  - id: echo
    tool: sire:local/echo
    with: {text: "{{ inputs.text }}"}
  - id: twice
    tool: sire:local/echo
    with: {text: "{{ steps.echo.output.text ~ steps.echo.output.text }}"}
"""


@pytest.fixture
def limited(sire_home: Path) -> int:
    (sire_home / "config.yaml").write_text("limits: {max_payload_bytes: 200}\n")
    return 200


@pytest.mark.parametrize("detach", [False, True])
def test_inputs_over_the_limit_exit_2_and_store_nothing(
    sire: Any, write: Any, sire_home: Path, limited: int, detach: bool
) -> None:
    result = sire("run", str(write(ECHO)), "-i", "text=" + "x" * 300, *["--detach"] * detach)

    assert result.code == 2
    assert result.err.strip() == (
        "sire: error: echo-it: the inputs are 311 bytes as JSON, over the limit of 200 bytes "
        "(limits.max_payload_bytes in $SIRE_HOME/config.yaml)"
    )
    assert "Traceback" not in result.err
    assert not (sire_home / "sire.db").exists()


def test_inputs_from_a_file_count_too(sire: Any, write: Any, tmp_path: Path, limited: int) -> None:
    inputs = tmp_path / "inputs.json"
    inputs.write_text(json.dumps({"text": "é" * 150}))

    result = sire("run", str(write(ECHO)), "--inputs-file", str(inputs))

    assert result.code == 2
    assert "the inputs are 311 bytes as JSON, over the limit of 200 bytes" in result.err


def test_a_step_output_over_the_limit_fails_the_run_naming_the_step(
    sire: Any, write: Any, limited: int
) -> None:
    result = sire("run", str(write(ECHO)), "-i", "text=" + "x" * 150, "--json")

    assert result.code == 1
    doc = result.json()
    assert doc["steps"]["echo"]["status"] == "completed"
    assert doc["steps"]["twice"]["status"] == "failed"
    assert doc["steps"]["twice"]["error"] == (
        "steps.twice: output is 311 bytes as JSON, over the limit of 200 bytes "
        "(limits.max_payload_bytes in $SIRE_HOME/config.yaml)"
    )
    shown = json.loads(
        sire("execution", "show", doc["execution_id"], "--json").out
    )  # the stored execution is intact and says the same
    assert shown["status"] == "failed"
    assert shown["steps"]["echo"]["output"] == {"text": "x" * 150}


def test_inputs_within_the_limit_run(sire: Any, write: Any, limited: int) -> None:
    result = sire("run", str(write(ECHO)), "-i", "text=" + "x" * 50, "--json")

    assert result.code == 0, result.err
