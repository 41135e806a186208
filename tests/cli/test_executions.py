"""`sire execution …`, `sire run --detach` and `sire agent` on a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sire.cli.main import main


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'sire.db'}"


@pytest.fixture
def sire(capsys: pytest.CaptureFixture[str], db: str) -> Any:
    def call(*args: str) -> Result:
        code = main([*args, "--db", db])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return call


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


BROKEN = """
    id: fixable
    steps:
      - {id: first, tool: "sire:local/file.write", with: {path: a.txt, content: "a"}}
      - {id: second, tool: "sire:local/file.read", with: {path: missing.txt}, needs: [first]}
      - {id: third, tool: "sire:local/echo", with: {got: "{{ steps.second.output.content }}"}}
"""
FIXED = BROKEN.replace("missing.txt", "a.txt")


def test_a_failed_execution_resumes_after_a_fix_without_rerunning_completed_steps(
    sire: Any, tmp_path: Path
) -> None:
    broken = write(tmp_path, "wf.yaml", BROKEN)
    failed = sire("run", str(broken), "--json", "--workspace", str(tmp_path))
    assert failed.code == 1
    execution_id = failed.json()["execution_id"]
    assert failed.json()["steps"]["third"]["status"] == "skipped"
    first_finished = failed.json()["steps"]["first"]["finished_at"]

    fixed = write(tmp_path, "fixed.yaml", FIXED)
    resumed = sire("execution", "resume", execution_id, "--definition", str(fixed), "--json")
    assert resumed.code == 0, resumed.err
    doc = resumed.json()
    assert doc["status"] == "completed"
    assert doc["steps"]["first"]["finished_at"] == first_finished  # not run again
    assert doc["steps"]["third"]["output"] == {"got": "a"}
    assert sire("execution", "resume", execution_id).code == 2  # completed: nothing to resume


def test_list_show_and_logs_describe_stored_executions(sire: Any, tmp_path: Path) -> None:
    workflow = write(tmp_path, "wf.yaml", FIXED)
    (tmp_path / "missing.txt").write_text("")
    execution_id = sire("run", str(workflow), "--json", "--workspace", str(tmp_path)).json()[
        "execution_id"
    ]
    listed = sire("execution", "list", "--json").json()["executions"]
    assert [e["execution_id"] for e in listed] == [execution_id]
    assert listed[0]["steps"] == {}
    assert sire("execution", "list", "--status", "failed", "--json").json() == {"executions": []}

    shown = sire("execution", "show", execution_id)
    assert shown.code == 0
    assert f"execution {execution_id}  workflow fixable  completed" in shown.out
    assert "  second  completed" in shown.out

    logs = sire("execution", "logs", execution_id, "--json")
    events = [json.loads(line) for line in logs.out.splitlines()]
    assert events[0]["kind"] == "execution"
    assert events[0]["status"] == "pending"
    assert events[-1] == {**events[-1], "kind": "execution", "status": "completed"}
    steps = [(e["key"], e["status"]) for e in events if e["kind"] == "step"]
    assert steps.index(("first", "completed")) < steps.index(("second", "running"))


def test_a_detached_run_is_driven_by_the_agent(sire: Any, tmp_path: Path) -> None:
    workflow = write(tmp_path, "wf.yaml", FIXED)
    created = sire("run", str(workflow), "--detach", "--json", "--workspace", str(tmp_path))
    assert created.code == 0
    assert created.json()["status"] == "pending"
    execution_id = created.json()["execution_id"]
    assert not (tmp_path / "a.txt").exists()
    agent = sire("agent", "--once", "--json")
    assert agent.code == 0, agent.err
    assert agent.json() == {"driven": 1, "failures": 0}
    shown = sire("execution", "show", execution_id, "--json").json()
    assert shown["status"] == "completed"
    assert (tmp_path / "a.txt").read_text() == "a"


def test_cancelling_a_pending_execution_cancels_it_and_a_finished_one_is_refused(
    sire: Any, tmp_path: Path
) -> None:
    workflow = write(tmp_path, "wf.yaml", FIXED)
    execution_id = sire("run", str(workflow), "--detach", "--json").json()["execution_id"]
    cancelled = sire("execution", "cancel", execution_id, "--json")
    assert cancelled.code == 0
    assert cancelled.json()["status"] == "cancelled"
    again = sire("execution", "cancel", execution_id)
    assert again.code == 2
    assert "already cancelled" in again.err
    assert sire("execution", "resume", execution_id).code == 2


@pytest.mark.parametrize("command", ["show", "resume", "cancel", "logs"])
def test_an_unknown_execution_id_exits_2(sire: Any, command: str) -> None:
    result = sire("execution", command, "01NOSUCHEXECUTION000000000")
    assert result.code == 2
    assert result.err.strip() == "sire: error: no execution '01NOSUCHEXECUTION000000000'"


def test_a_file_that_is_not_a_database_is_an_environment_error_and_stays_untouched(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bogus = tmp_path / "notes.db"
    bogus.write_bytes(b"these are my notes, not a database" * 100)
    before = bogus.read_bytes()
    code = main(["execution", "list", "--db", f"sqlite:///{bogus}"])
    err = capsys.readouterr().err
    assert code == 3
    assert "is not a Sire database" in err
    assert len(err.strip().splitlines()) == 1
    assert bogus.read_bytes() == before


def test_a_database_from_a_newer_sire_is_refused_and_left_alone(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "new.db"
    assert main(["execution", "list", "--db", f"sqlite:///{path}"]) == 0
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA user_version = 999")
    before = path.read_bytes()
    capsys.readouterr()
    code = main(["execution", "list", "--db", f"sqlite:///{path}"])
    assert code == 3
    assert "newer than this Sire" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_an_unknown_store_url_is_an_environment_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["execution", "list", "--db", "mysql://nope"])
    assert code == 3
    assert "unknown scheme 'mysql:'" in capsys.readouterr().err
