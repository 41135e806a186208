"""`sire mcp serve` refuses bad input before serving: one line on stderr, the usual status.

Run as real processes (bounded): a check that failed to fire would start a server.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest

from .conftest import Served

TIMEOUT = 30.0


class Ended(NamedTuple):
    code: int
    out: str
    err: str


def serve(served: Served, *args: str) -> Ended:
    """`sire mcp serve <args>` with the served home; it must end by itself."""
    done = subprocess.run(
        [sys.executable, "-m", "sire", "mcp", "serve", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=served.env(),
        timeout=TIMEOUT,
    )
    return Ended(done.returncode, done.stdout, done.stderr)


def workflow(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_an_invalid_workflow_file_exits_2_with_one_located_line(
    served: Served, tmp_path: Path
) -> None:
    bad = workflow(tmp_path, "bad.yaml", "id: bad\nsteps:\n  - id: one\n    tool: nope\n")
    ended = serve(served, "--workflow", str(bad))
    assert ended.code == 2
    assert ended.out == ""
    (line,) = ended.err.splitlines()
    assert line.startswith(f"sire: error: {bad}:4: ")


def test_a_missing_workflow_file_exits_2_with_one_line(served: Served, tmp_path: Path) -> None:
    ended = serve(served, "--workflow", str(tmp_path / "absent.yaml"))
    assert ended.code == 2
    assert ended.err.splitlines() == [
        f"sire: error: {tmp_path / 'absent.yaml'}: workflow file not found"
    ]


def test_a_workflow_named_like_a_builtin_tool_is_refused_at_startup(
    served: Served, tmp_path: Path
) -> None:
    echo = workflow(
        tmp_path,
        "echo.yaml",
        """
        # a workflow whose id is taken
        id: echo
        steps:
          - {id: one, tool: "sire:local/echo"}
        """,
    )
    ended = serve(served, "--workflow", str(echo))
    assert ended.code == 2
    assert ended.err.splitlines() == [
        f"sire: error: {echo}:3: workflow id 'echo' is the name of a built-in tool; each "
        "workflow is served as the tool named by its id, so rename the workflow"
    ]


def test_two_workflows_with_one_id_are_refused_at_startup(served: Served, tmp_path: Path) -> None:
    text = "id: twin\nsteps:\n  - {id: one, tool: 'sire:local/echo'}\n"
    first = workflow(tmp_path, "first.yaml", text)
    second = workflow(tmp_path, "second.yaml", text)
    ended = serve(served, "-w", str(first), "-w", str(second))
    assert ended.code == 2
    assert ended.err.splitlines() == [
        f"sire: error: {second}:1: workflow id 'twin' is already served from {first}; each "
        "workflow is served as the tool named by its id, so give them different ids"
    ]


def test_a_port_in_use_exits_3_with_one_line(served: Served) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ended = serve(served, "--transport", "http", "--port", str(port))
    assert ended.code == 3
    assert ended.err.splitlines() == [
        f"sire: error: cannot serve on 127.0.0.1:{port}: the port is already in use "
        "(stop whatever holds it, or choose another --port)"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--transport", "sse"], "--transport sse: expected one of stdio, http"),
        (["--workspace", "/nonexistent/dir"], "--workspace /nonexistent/dir: not a directory"),
    ],
    ids=["transport", "workspace"],
)
def test_bad_options_exit_2_with_one_line(served: Served, args: list[str], message: str) -> None:
    ended = serve(served, *args)
    assert ended.code == 2
    assert ended.err.splitlines() == [f"sire: error: {message}"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [({"Host": "evil.example"}, 421), ({"Origin": "http://evil.example"}, 403)],
    ids=["host", "origin"],
)
def test_http_refuses_requests_from_other_sites_on_a_localhost_bind(
    http_serve: Any, headers: dict[str, str], status: int
) -> None:
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    response = httpx.post(
        http_serve.url,
        json=request,
        headers={"Accept": "application/json, text/event-stream", **headers},
        timeout=TIMEOUT,
    )
    assert response.status_code == status
