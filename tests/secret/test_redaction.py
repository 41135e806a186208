"""Secrets end to end through `sire run` and a real SQLite store: every output path shows `***`.

Each test stores a secret with `sire secret set`, runs a workflow that uses it, and
looks for its value where a user, a log or a file could see it: the store's files
(WAL included), step and execution errors, events, progress lines, `--json`,
`execution show|logs`, the debugger and the workflow's outputs; and checks that the
tools themselves were given the real value.
"""

from __future__ import annotations

import io
import json
import re
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

VALUE = "s3cr3t-Value_42"
SIRE = [sys.executable, "-m", "sire"]

# `gate` fails until go.txt exists, so a resume has something to finish.
TOKEN_FLOW = """
    id: token-flow
    steps:
      - id: login
        tool: sire:local/echo
        with: {auth: "Bearer {{ .secrets.api_token }}", user: ada}
      - id: gate
        tool: sire:local/file.read
        with: {path: go.txt}
      - id: use
        tool: sire:local/file.write
        needs: [gate]
        with: {path: out.txt, content: "{{ steps.login.output.auth }}"}
    outputs:
      auth: "{{ steps.login.output.auth }}"
      written: "{{ steps.use.output.path }}"
"""

# A tool error that echoes the secret, after a retry.
LEAK = """
    id: leak
    steps:
      - id: read
        tool: sire:local/file.read
        with: {path: "missing-{{ secrets.api_token }}.txt"}
        retry: {max_attempts: 2, initial_interval: 1ms}
"""


@pytest.fixture(autouse=True)
def stored_secret(sire: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(VALUE))
    assert sire("secret", "set", "api_token").code == 0


def home_bytes(home: Path) -> bytes:
    """Every file under $SIRE_HOME but the key: the database, its WAL and shm, the cache."""
    return b"".join(
        p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file() and p.name != "secret.key"
    )


def execution_id(text: str) -> str:
    found = re.search(r"\b(01[0-9A-Z]{24})\b", text)
    assert found, text
    return found.group(1)


def run(sire: Any, write: Any, text: str, tmp_path: Path, *args: str) -> Any:
    return sire("run", str(write(text)), "--workspace", str(tmp_path), *args)


def test_an_output_holding_a_secret_is_stored_encrypted_and_a_resume_gets_the_value(
    sire: Any, write: Any, tmp_path: Path, sire_home: Path
) -> None:
    first = run(sire, write, TOKEN_FLOW, tmp_path)
    assert first.code == 1
    eid = execution_id(first.out)
    assert VALUE.encode() not in home_bytes(sire_home)
    with sqlite3.connect(sire_home / "sire.db") as db:
        (output,) = db.execute(
            "SELECT output FROM steps WHERE execution_id = ? AND key = 'login'", (eid,)
        ).fetchone()
    auth = json.loads(output)["auth"]
    assert set(auth) == {"$sire.secret", "redacted"}
    assert auth["redacted"] == "Bearer ***"
    assert auth["$sire.secret"].startswith("v1:")

    (tmp_path / "go.txt").write_text("go")
    resumed = sire("execution", "resume", eid)
    assert resumed.code == 0, resumed.err
    assert (tmp_path / "out.txt").read_text() == f"Bearer {VALUE}"  # the tool got the value
    assert '"auth": "Bearer ***"' in resumed.out
    assert VALUE not in resumed.out + resumed.err
    assert VALUE.encode() not in home_bytes(sire_home)


def test_the_write_ahead_log_of_a_live_run_holds_no_plain_value(
    write: Any, tmp_path: Path, sire_home: Path
) -> None:
    flow = write("""
        id: live
        steps:
          - {id: login, tool: sire:local/echo, with: {auth: "Bearer {{ secrets.api_token }}"}}
          - {id: wait, tool: sire:local/sleep, needs: [login], with: {seconds: 30}}
    """)
    process = subprocess.Popen(
        [*SIRE, "run", str(flow), "--workspace", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:  # a step's line comes once its state is durable
            if re.match(r"\s*login\s+completed", line):
                break
        wal = (sire_home / "sire.db-wal").read_bytes()  # the run still holds it open
        everything = (sire_home / "sire.db").read_bytes() + wal
        assert wal
        assert b"$sire.secret" in everything  # the output is there, sealed
        assert VALUE.encode() not in everything
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_params_reach_the_tool_unredacted(sire: Any, write: Any, tmp_path: Path) -> None:
    (tmp_path / "go.txt").write_text("go")
    done = run(sire, write, TOKEN_FLOW, tmp_path)
    assert done.code == 0, done.err
    assert (tmp_path / "out.txt").read_text() == f"Bearer {VALUE}"


def test_outputs_progress_json_and_show_are_redacted(sire: Any, write: Any, tmp_path: Path) -> None:
    (tmp_path / "go.txt").write_text("go")
    text = run(sire, write, TOKEN_FLOW, tmp_path)
    assert text.code == 0, text.err
    assert '"auth": "Bearer ***"' in text.out
    as_json = run(sire, write, TOKEN_FLOW, tmp_path, "--json")
    document = as_json.json()
    assert document["outputs"]["auth"] == "Bearer ***"
    assert document["steps"]["login"]["output"] == {"auth": "Bearer ***", "user": "ada"}
    eid = document["execution_id"]
    show = sire("execution", "show", eid)
    shown = sire("execution", "show", eid, "--json")
    listed = sire("execution", "list", "--json")
    assert '"auth": "Bearer ***"' in show.out
    assert shown.json()["steps"]["login"]["output"]["auth"] == "Bearer ***"
    assert shown.json()["outputs"]["auth"] == "Bearer ***"
    for result in (text, as_json, show, shown, listed):
        assert VALUE not in result.out + result.err
        assert "$sire.secret" not in result.out


def test_step_and_execution_errors_progress_and_events_are_redacted(
    sire: Any, write: Any, tmp_path: Path, sire_home: Path
) -> None:
    text = run(sire, write, LEAK, tmp_path)
    assert text.code == 1
    assert re.search(r"read +retrying +attempt 1", text.out)
    assert "'missing-***.txt' does not exist" in text.out
    eid = execution_id(text.out)
    as_json = run(sire, write, LEAK, tmp_path, "--json").json()
    assert as_json["error"] == (
        "step 'read' failed: file.read: 'missing-***.txt' does not exist in the workspace"
    )
    assert as_json["steps"]["read"]["error"] == as_json["error"].removeprefix(
        "step 'read' failed: "
    )
    show = sire("execution", "show", eid)
    logs = sire("execution", "logs", eid)
    logs_json = sire("execution", "logs", eid, "--json")
    assert "error: step 'read' failed: file.read: 'missing-***.txt'" in show.out
    assert "retrying  attempts=1" in logs.out
    assert "missing-***.txt" in logs.out
    errors = [json.loads(line).get("error") for line in logs_json.out.splitlines()]
    assert "file.read: 'missing-***.txt' does not exist in the workspace" in errors
    for result in (text, show, logs, logs_json):
        assert VALUE not in result.out + result.err
    assert VALUE not in json.dumps(as_json)
    assert VALUE.encode() not in home_bytes(sire_home)


def test_an_execution_error_echoing_a_secret_is_redacted(
    sire: Any, write: Any, tmp_path: Path, sire_home: Path
) -> None:
    # Jinja names the missing key: the error of the outputs would hold the value.
    done = run(
        sire,
        write,
        """
        id: outs
        steps:
          - {id: a, tool: "sire:local/echo", with: {x: 1}}
        outputs:
          x: "{{ {'a': 1}[secrets.api_token] }}"
        """,
        tmp_path,
    )
    assert done.code == 1
    assert done.out.endswith(": outputs: outputs.x: 'dict object' has no attribute '***'\n")
    show = sire("execution", "show", execution_id(done.out), "--json")
    assert show.json()["error"] == "outputs: outputs.x: 'dict object' has no attribute '***'"
    assert VALUE.encode() not in home_bytes(sire_home)


def test_a_missing_secret_fails_the_run_naming_it(sire: Any, write: Any, tmp_path: Path) -> None:
    done = run(
        sire,
        write,
        """
        id: missing
        steps:
          - {id: a, tool: "sire:local/echo", with: {token: "{{ .secrets.nope }}"}}
        """,
        tmp_path,
    )
    assert done.code == 1
    assert "steps.a.with.token: secret 'nope' is not set" in done.out


def test_a_dry_run_keeps_secrets_pending_even_when_they_are_set(
    sire: Any, write: Any, tmp_path: Path
) -> None:
    done = run(sire, write, TOKEN_FLOW, tmp_path, "--dry-run", "--json")
    assert done.code == 0, done.err
    assert VALUE not in done.out
    assert "Bearer {{ .secrets.api_token }}" in done.out


def test_a_workflow_without_secrets_does_not_load_them(
    sire: Any, write: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIRE_SECRET_KEY", "not a key")  # would fail any attempt to load
    plain = run(sire, write, "id: p\nsteps:\n  - {id: a, tool: 'sire:local/echo'}\n", tmp_path)
    assert plain.code == 0, plain.err
    uses = run(sire, write, TOKEN_FLOW, tmp_path)
    assert uses.code == 3
    assert "SIRE_SECRET_KEY is not a secret key" in uses.err


def test_a_run_with_the_wrong_key_exits_3_with_one_sentence(
    sire: Any, write: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIRE_SECRET_KEY", "A" * 43 + "=")
    done = run(sire, write, TOKEN_FLOW, tmp_path)
    assert done.code == 3
    assert done.err.splitlines()[-1] == (
        "sire: error: cannot decrypt secret 'api_token': SIRE_SECRET_KEY is not the key it "
        "was stored with (or the stored value was altered)"
    )


DEBUGGED = """
    id: debugged
    steps:
      - id: login
        tool: sire:local/echo
        with: {auth: "Bearer {{ .secrets.api_token }}", odd: "{{ secrets.quoted }}"}
      - id: read
        tool: sire:local/file.read
        needs: [login]
        with: {path: "missing-{{ secrets.api_token }}.txt"}
"""
QUOTED = 'pa"ss\\word'  # JSON would escape it: masked before dumping, not after


def test_a_run_without_the_key_file_exits_3_and_makes_none(
    sire: Any, write: Any, tmp_path: Path, sire_home: Path
) -> None:
    (sire_home / "secret.key").unlink()
    done = run(sire, write, TOKEN_FLOW, tmp_path)
    assert done.code == 3
    assert "SIRE_SECRET_KEY is not set and there is no key file" in done.err
    assert not (sire_home / "secret.key").exists()
    assert sire("execution", "list", "--json").json()["executions"][0]["status"] == "pending"


def test_the_debugger_shows_params_outputs_and_errors_redacted(
    sire: Any, write: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(QUOTED))
    assert sire("secret", "set", "quoted").code == 0
    script = "inspect\nstep\ninspect login\nstep\ncontinue\n"
    done = subprocess.run(
        [*SIRE, "run", str(write(DEBUGGED)), "--debug", "--workspace", str(tmp_path)],
        input=script,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert '"auth": "Bearer ***",' in done.stdout  # inspect: the parameters
    assert 'output: {\n    "auth": "Bearer ***",\n    "odd": "***"' in done.stdout  # inspect login
    assert "read failed (attempt 1): file.read: 'missing-***.txt' does not exist" in done.stdout
    for value in (VALUE, QUOTED, json.dumps(QUOTED)[1:-1]):
        assert value not in done.stdout + done.stderr


class Recorder(BaseHTTPRequestHandler):
    """Records each request's headers and answers 500: the MCP call fails after sending them."""

    seen: ClassVar[list[dict[str, str]]] = []

    def do_POST(self) -> None:
        Recorder.seen.append(dict(self.headers))
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_DELETE = do_POST

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def http_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Recorder.seen = []
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_server_headers_get_the_real_value_and_errors_do_not_show_it(
    sire: Any, write: Any, tmp_path: Path, http_server: int
) -> None:
    done = run(
        sire,
        write,
        f"""
        id: headers
        servers:
          api:
            url: http://127.0.0.1:{http_server}/mcp
            headers: {{Authorization: "Bearer {{{{ .secrets.api_token }}}}"}}
        steps:
          - {{id: call, tool: "mcp:api#anything"}}
        """,
        tmp_path,
    )
    assert done.code == 1
    assert Recorder.seen, done.out + done.err
    assert Recorder.seen[0]["Authorization"] == f"Bearer {VALUE}"
    assert VALUE not in done.out + done.err
