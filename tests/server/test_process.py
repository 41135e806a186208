"""`sire server --agent` as a real process on a free port, spoken to in plain HTTP."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .conftest import HELLO


def call(
    base: str, method: str, path: str, token: str | None = None, body: Any = None
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            raw = answer.read().decode()
            kind = answer.headers.get("content-type", "")
            return answer.status, json.loads(raw) if kind.startswith("application/json") else raw
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read().decode())


def test_a_server_process_serves_the_api_and_its_agent_runs_what_is_started(
    sire: Any, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'sire.db'}"
    token = sire("token", "create", "--role", "admin", "--db", db).out.strip()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sire",
            "server",
            "--port",
            "0",
            "--agent",
            "--db",
            db,
            "--workspace",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([server.stdout], [], [], 15)
        assert ready, "the server did not say where it listens"
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.startswith("sire server listening on http://127.0.0.1:"), line
        base = line.split()[-3] if "(agent on)" in line else line.split()[-1]

        health = call(base, "GET", "/v1/health")
        refused = call(base, "GET", "/v1/workflows")
        registered = call(base, "POST", "/v1/workflows", token, {"definition": HELLO})
        started = call(base, "POST", "/v1/workflows/hello/executions", token, {})
        execution_id = started[1]["execution_id"]
        status, stream = call(base, "GET", f"/v1/executions/{execution_id}/events", token)
        finished = call(base, "GET", f"/v1/executions/{execution_id}", token)

        assert health == (
            200,
            {"status": "ok", "version": health[1]["version"], "agent": "running"},
        )
        assert refused[0] == 401
        assert "needs an API token" in refused[1]["error"]
        assert (registered[0], started[0], status) == (201, 201, 200)
        assert "event: end" in stream
        assert '"status": "completed"' in stream
        assert finished[1]["outputs"] == {"greet": {"msg": "hi world"}}
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=15)
    assert server.returncode == 0, err
    assert "Traceback" not in err


def test_a_busy_port_is_one_clear_error(sire: Any, tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = sire("server", "--port", str(port), "--db", f"sqlite:///{tmp_path / 'x.db'}")

    assert result.code == 3
    assert f"--port {port}: cannot listen (Address already in use)" in result.err
