"""`sire test`, `sire init` and the pytest plugin, driven as a user drives them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).parents[2] / "examples"


def sire_process(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sire", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=os.environ.copy(),
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


WORKFLOW = """
id: tested
inputs:
  n: {type: integer, default: 2}
steps:
  - id: double
    tool: sire:local/json.query
    with: {data: "{{ inputs.n }}", query: "@"}
  - id: check
    tool: sire:local/echo
    with: {checked: true}
    if: "{{ inputs.n > 100 }}"
  - id: after_check
    tool: sire:local/echo
    needs: [check]
    with: {ok: true}
outputs:
  n: "{{ steps.double.output.result }}"
"""


def test_the_examples_tests_pass_without_a_server_or_the_network(tmp_path: Path) -> None:
    done = sire_process("test", str(EXAMPLES), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS  a save that fails twice is retried and succeeds" in done.stdout
    assert "PASS  replays a recorded run call for call" in done.stdout
    assert done.stdout.rstrip().splitlines()[-1].startswith("6 passed in ")


def test_a_failing_expectation_is_reported_in_a_sentence_and_exits_1(tmp_path: Path) -> None:
    write(tmp_path / "tested.yaml", WORKFLOW)
    write(
        tmp_path / "tested.test.yaml",
        """
        workflow: tested.yaml
        tests:
          - name: passes
            inputs: {n: 3}
            expect:
              outputs: {n: 3}
              steps: {double: completed}
              skipped: [check, after_check]
          - name: wrong output
            expect: {outputs: {n: 5}}
          - name: wrong skips and status
            expect:
              status: failed
              skipped: [check]
              steps: {double: {status: completed, attempts: 2}}
        """,
    )
    done = sire_process("test", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    out = done.stdout
    assert "PASS  passes" in out
    assert "FAIL  wrong output" in out
    assert "outputs.n: expected 5, got 2" in out
    assert "status: expected failed, got completed" in out
    assert "skipped: expected ['check'], got ['after_check', 'check']" in out
    assert "steps.double.attempts: expected 2, got 1" in out
    assert out.rstrip().splitlines()[-1].startswith("1 passed, 2 failed in ")


def test_k_selects_tests_and_json_reports_each(sire: Any, tmp_path: Path) -> None:
    write(tmp_path / "tested.yaml", WORKFLOW)
    test_file = write(
        tmp_path / "tested.test.yaml",
        """
        workflow: tested.yaml
        tests:
          - {name: small, inputs: {n: 1}, expect: {outputs: {n: 1}}}
          - {name: large, inputs: {n: 500}, expect: {outputs: {n: 500}, skipped: []}}
          - {name: broken, expect: {outputs: {n: 0}}}
        """,
    )
    result = sire("test", str(test_file), "-k", "l", "--json")
    assert result.code == 0, result.out
    doc = result.json()
    assert [t["name"] for t in doc["tests"]] == ["small", "large"]
    assert (doc["passed"], doc["failed"]) == (2, 0)
    result = sire("test", str(test_file), "--json", "-x")
    assert result.code == 1
    assert json.loads(result.out)["tests"][-1]["failures"] == ["outputs.n: expected 0, got 2"]


def test_mocks_in_a_test_retry_without_waiting_and_mock_only_is_hermetic(
    sire: Any, tmp_path: Path
) -> None:
    write(tmp_path / "tested.yaml", WORKFLOW.replace('    if: "{{ inputs.n > 100 }}"\n', ""))
    test_file = write(
        tmp_path / "tested.test.yaml",
        """
        workflow: tested.yaml
        tests:
          - name: flaky check retried
            mocks:
              double: {output: {result: 7}}
              check:
                - {error: busy, kind: transport}
                - {error: busy, kind: transport}
                - {output: {checked: true}}
            mock_only: true
            expect:
              steps:
                double: {output: {result: 7}, mocked: true}
                check: {status: completed, attempts: 3, mocked: true}
                after_check: {status: failed, error: "--mock-only: no mock for step 'after_check'"}
              status: failed
        """,
    )
    # check's workflow retry policy is the default (no retries): give it one.
    workflow = tmp_path / "tested.yaml"
    workflow.write_text(
        workflow.read_text().replace(
            "    with: {checked: true}",
            "    retry: {max_attempts: 3, initial_interval: 1h}\n    with: {checked: true}",
        )
    )
    result = sire("test", str(test_file))
    assert result.code == 0, result.out  # an hour's backoff, twice, skipped by the test clock
    assert "PASS  flaky check retried" in result.out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("workflow: tested.yaml\n", "`tests:` must be a non-empty list"),
        ("tests: []\n", "a test file names its `workflow:` file"),
        ("workflow: tested.yaml\ntests: [{name: a, expec: {}}]\n", "unknown field 'expec'"),
        ("workflow: tested.yaml\ntests: [{expect: {}}]\n", "give the test a `name`"),
        (
            "workflow: tested.yaml\ntests: [{name: a, expect: {outputz: {}}}]\n",
            "unknown expectation 'outputz'",
        ),
        (
            "workflow: tested.yaml\ntests: [{name: a}, {name: a}]\n",
            "two tests are named 'a'",
        ),
        ("workflow: [\n", "not valid YAML (line 2"),
    ],
)
def test_a_bad_test_file_is_one_sentence_and_exit_2(
    sire: Any, tmp_path: Path, text: str, message: str
) -> None:
    write(tmp_path / "tested.yaml", WORKFLOW)
    test_file = write(tmp_path / "bad.test.yaml", text)
    result = sire("test", str(test_file))
    assert result.code == 2
    assert message in result.out
    assert str(test_file) in result.out
    assert "Traceback" not in result.out + result.err


def test_a_test_of_a_broken_workflow_fails_with_the_definition_error(
    sire: Any, tmp_path: Path
) -> None:
    write(tmp_path / "tested.yaml", "id: tested\nsteps:\n  - {id: a, tool: 'sire:local/nope'}\n")
    test_file = write(
        tmp_path / "tested.test.yaml", "workflow: tested.yaml\ntests: [{name: runs}]\n"
    )
    result = sire("test", str(test_file))
    assert result.code == 1
    assert "FAIL  runs" in result.out
    assert "tested.yaml:3" in result.out


def test_no_tests_found_exits_5(sire: Any, tmp_path: Path) -> None:
    result = sire("test", str(tmp_path))
    assert result.code == 5
    assert "no workflow tests (*.test.yaml) found" in result.err


def test_init_scaffolds_a_workflow_whose_tests_pass_and_never_overwrites(tmp_path: Path) -> None:
    done = sire_process("init", "project", "--name", "greeter", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "project" / "greeter.yaml").is_file()
    tested = sire_process("test", "project", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout
    assert "2 passed" in tested.stdout
    ran = sire_process("run", "project/greeter.yaml", "-i", "name=Ada", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert (tmp_path / "out" / "greeting.txt").read_text() == "Hello, Ada!\n"
    again = sire_process("init", "project", "--name", "greeter", cwd=tmp_path)
    assert again.returncode == 2
    assert "already exists" in again.stderr
    bad = sire_process("init", "--name", "Bad Name", cwd=tmp_path)
    assert bad.returncode == 2
    assert "--name Bad Name: a workflow id is" in bad.stderr


def test_the_pytest_plugin_runs_workflow_tests_as_pytest_items(tmp_path: Path) -> None:
    write(tmp_path / "tested.yaml", WORKFLOW)
    write(
        tmp_path / "tested.test.yaml",
        """
        workflow: tested.yaml
        tests:
          - {name: good, expect: {outputs: {n: 2}}}
          - {name: bad, expect: {outputs: {n: 9}}}
        """,
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "sire.testing.pytest_plugin",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rf",
            "tested.test.yaml",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stdout
    assert "1 failed, 1 passed" in done.stdout
    assert "outputs.n: expected 9, got 2" in done.stdout
    assert "tested.test.yaml::bad" in done.stdout
