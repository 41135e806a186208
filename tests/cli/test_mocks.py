"""`--mock-file`, `--mock-only` and `--record`: canned outcomes, hermetic runs, replay.

Each run is a real `sire` with the real store; only the mocked calls skip their tools.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from sire.dispatch.mock import MockFile
from sire.errors import InputError

EXAMPLES = Path(__file__).parents[2] / "examples"
HELLO = EXAMPLES / "hello.yaml"


def sire_process(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`sire ARGS` as a user runs it, in `cwd`, with this test's SIRE_HOME."""
    return subprocess.run(
        [sys.executable, "-m", "sire", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=os.environ.copy(),
    )


def mock_file(tmp_path: Path, text: str, name: str = "mocks.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_a_mocked_sequence_fails_twice_then_succeeds_and_is_marked_mocked(
    tmp_path: Path,
) -> None:
    mocks = mock_file(
        tmp_path,
        """
        save:
          - {error: disk full}
          - {error: connection reset, kind: transport}
          - {output: {path: out/greeting.txt}}
        """,
    )
    # A short retry interval keeps the real waits small: the real clock runs here.
    workflow = tmp_path / "hello.yaml"
    workflow.write_text(HELLO.read_text().replace("initial_interval: 1s", "initial_interval: 10ms"))
    done = sire_process("run", str(workflow), "--mock-file", str(mocks), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    save, greet = doc["steps"]["save"], doc["steps"]["greet"]
    assert save["status"] == "completed"
    assert save["attempts"] == 3
    assert save["mocked"] is True
    assert save["output"] == {"path": "out/greeting.txt"}
    assert "mocked" not in greet  # unmocked steps run for real
    assert greet["output"] == {"text": "Hello, world!"}
    assert not (tmp_path / "out").exists()  # the mocked write never happened

    shown = sire_process("execution", "show", doc["execution_id"], cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    save_row = next(line for line in shown.stdout.splitlines() if line.strip().startswith("save"))
    assert "(mocked)" in save_row
    greet_row = next(line for line in shown.stdout.splitlines() if line.strip().startswith("greet"))
    assert "(mocked)" not in greet_row


def test_progress_marks_mocked_steps(tmp_path: Path) -> None:
    mocks = mock_file(tmp_path, "greet: {output: {text: canned}}\n")
    done = sire_process("run", str(HELLO), "--mock-file", str(mocks), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.strip().startswith("greet")]
    assert rows
    assert all("(mocked)" in row for row in rows if "completed" in row)
    assert "canned" in done.stdout
    assert (tmp_path / "out" / "greeting.txt").read_text() == "canned\n"


def test_tool_uris_and_patterns_are_keys_and_a_step_id_wins_over_them(
    sire: Any, tmp_path: Path
) -> None:
    mocks = mock_file(
        tmp_path,
        """
        "sire:local/text.*": {output: {text: by pattern}}
        "sire:local/file.write": {output: {path: by uri}}
        save: {output: {path: by step id}}
        """,
    )
    result = sire("run", str(HELLO), "--mock-file", str(mocks), "--json")
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["steps"]["greet"]["output"] == {"text": "by pattern"}
    assert doc["steps"]["save"]["output"] == {"path": "by step id"}


def test_mock_only_fails_an_unmocked_call_naming_its_tool_and_arguments(
    sire: Any, tmp_path: Path
) -> None:
    mocks = mock_file(tmp_path, "greet: {output: {text: hi}}\n")
    result = sire("run", str(HELLO), "--mock-file", str(mocks), "--mock-only", "--json")
    assert result.code == 1
    doc = result.json()
    error = doc["steps"]["save"]["error"]
    assert "--mock-only: no mock for step 'save' calling sire:local/file.write" in error
    assert '"content":"hi\\n"' in error
    assert '"path":"out/greeting.txt"' in error
    assert doc["steps"]["save"]["attempts"] == 1  # not retried: it cannot get better
    assert not (tmp_path / "out").exists()


def test_mock_only_without_a_mock_file_is_a_usage_error(sire: Any) -> None:
    result = sire("run", str(HELLO), "--mock-only")
    assert result.code == 2
    assert "--mock-only: needs --mock-file" in result.err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "gret: {output: {text: x}}\n",
            "'gret' is not a step of workflow 'greet-and-save'; did you mean 'greet'?",
        ),
        ("greet: {outptu: {text: x}}\n", "'greet': unknown field 'outptu'"),
        ("greet: {output: {text: x}, error: no}\n", "give exactly one of `output` and `error`"),
        ("greet: [{output: 3}]\n", "'greet'[0]: `output` must be an object"),
        ("greet: {error: x, kind: weird}\n", "kind 'weird' is not one of"),
        ("greet: {output: {}, delay: soon}\n", "`delay`"),
        ("- greet\n", "must map step ids or tool URIs to outcomes"),
        ("greet: [\n", "not valid YAML"),
        ("'bad key': {output: {}}\n", "a key is a step id, a tool URI or a URI pattern"),
    ],
)
def test_a_bad_mock_file_is_one_sentence_and_exit_2(
    sire: Any, tmp_path: Path, text: str, message: str
) -> None:
    mocks = mock_file(tmp_path, text)
    result = sire("run", str(HELLO), "--mock-file", str(mocks))
    assert result.code == 2
    assert message in result.err
    assert str(mocks) in result.err
    assert "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_arguments_pick_the_outcome_and_a_used_sequence_repeats_its_last() -> None:
    mocks = MockFile.parse(
        {
            "sire:local/echo": [
                {"arguments": {"n": 1}, "output": {"one": True}},
                {"arguments": {"n": 2}, "output": {"two": True}},
            ],
            "step": [{"error": "first"}, {"output": {"then": "ok"}}],
        }
    )
    answer = mocks.answer
    assert answer("a", "sire:local/echo", {"n": 2}).output == {"two": True}  # type: ignore[union-attr]
    assert answer("a", "sire:local/echo", {"n": 1}).output == {"one": True}  # type: ignore[union-attr]
    assert answer("a", "sire:local/echo", {"n": 3}) is None
    assert answer("step", "x:y", {}).error == "first"  # type: ignore[union-attr]
    assert answer("step", "x:y", {}).output == {"then": "ok"}  # type: ignore[union-attr]
    assert answer("step", "x:y", {}).output == {"then": "ok"}  # type: ignore[union-attr]
    with pytest.raises(InputError, match="an empty list answers nothing"):
        MockFile.parse({"step": []})


RECORDED = """
id: recorded
inputs:
  names: {type: array, default: [ada, grace]}
steps:
  - id: stamp
    tool: sire:local/file.read
    with: {path: stamp.txt}
  - id: shout
    tool: sire:local/text.template
    for_each: "{{ inputs.names }}"
    with: {template: "{{ item | upper }} at {{ steps.stamp.output.content }}"}
  - id: save
    tool: sire:local/file.write
    with:
      path: out.txt
      content: "{{ steps.shout.output['items'] | map(attribute='text') | join(', ') }}"
    retry: {max_attempts: 3, initial_interval: 10ms}
outputs:
  saved: "{{ steps.shout.output['items'] | map(attribute='text') | list }}"
"""


def test_record_then_replay_with_mock_only_gives_the_same_run_without_calling_a_tool(
    tmp_path: Path,
) -> None:
    live, replay = tmp_path / "live", tmp_path / "replay"
    live.mkdir()
    replay.mkdir()
    workflow = tmp_path / "recorded.yaml"
    workflow.write_text(textwrap.dedent(RECORDED))
    (live / "stamp.txt").write_text("noon")
    # The save fails once on the way (mocked while recording): the retry is recorded too.
    flaky = mock_file(tmp_path, "save: [{error: disk full}, {output: {path: out.txt}}]\n")
    record = tmp_path / "calls.yaml"
    first = sire_process(
        "run",
        str(workflow),
        "--json",
        "--mock-file",
        str(flaky),
        "--record",
        str(record),
        cwd=live,
    )
    assert first.returncode == 0, first.stderr
    recorded = yaml.safe_load(record.read_text())
    [read] = recorded["sire:local/file.read"]
    assert read["arguments"] == {"path": "stamp.txt"}
    assert read["output"]["content"] == "noon"
    assert [c["arguments"] for c in recorded["sire:local/text.template"]] == [
        {"template": "ADA at noon"},
        {"template": "GRACE at noon"},
    ]
    saves = recorded["sire:local/file.write"]
    assert [("error" in c, "output" in c) for c in saves] == [(True, False), (False, True)]

    # Replayed elsewhere: no stamp file, no real tool, the same outputs and attempts.
    second = sire_process(
        "run", str(workflow), "--json", "--mock-file", str(record), "--mock-only", cwd=replay
    )
    assert second.returncode == 0, second.stderr
    before, after = json.loads(first.stdout), json.loads(second.stdout)
    assert after["outputs"] == before["outputs"] == {"saved": ["ADA at noon", "GRACE at noon"]}
    for key, state in before["steps"].items():
        assert after["steps"][key]["status"] == state["status"], key
        assert after["steps"][key]["attempts"] == state["attempts"], key
        assert after["steps"][key]["output"] == state["output"], key
    assert after["steps"]["save"]["attempts"] == 2
    assert list(replay.iterdir()) == []  # nothing was read or written for real

    # A changed input is a call the recording does not know: it fails loudly.
    third = sire_process(
        "run",
        str(workflow),
        "--json",
        "--mock-file",
        str(record),
        "--mock-only",
        "-i",
        'names=["linus"]',
        cwd=replay,
    )
    assert third.returncode == 1
    error = json.loads(third.stdout)["steps"]["shout/0"]["error"]
    assert "no mock for step 'shout' calling sire:local/text.template" in error
    assert "LINUS at noon" in error
