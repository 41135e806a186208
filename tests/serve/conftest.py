"""Real `sire mcp serve` processes for the serve tests, and what they serve; no mocks.

One HTTP server for the session (it serves both protocol eras); stdio servers are started by
the official client per test. Each server gets its own SIRE_HOME (whose config.yaml
allows `exec` of `echo`), a workspace, and the workflows below.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

import pytest

MODERN = "2026-07-28"
HANDSHAKE = "2025-11-25"
#: `mcp.Client(mode=...)` per protocol era: "auto" settles on the stateless era with a
#: server of both eras; "legacy" forces the `initialize` handshake.
CLIENT_MODE = {MODERN: "auto", HANDSHAKE: "legacy"}
#: `exec` is off unless config.yaml allows a program; the served home allows `echo`.
EXEC_ALLOW = ("echo",)
START_TIMEOUT = 30.0

WORKFLOWS = {
    "greet.yaml": """
        id: greet
        description: Greets someone and saves the greeting.
        inputs:
          name: {type: string, description: who to greet}
          punctuation: {type: string, default: "!"}
        steps:
          - id: compose
            tool: sire:local/text.template
            with: {template: "Hello, {{ inputs.name }}{{ inputs.punctuation }}"}
          - id: save
            tool: sire:local/file.write
            with:
              path: "greetings/{{ inputs.name }}.txt"
              content: "{{ steps.compose.output.text }}"
        outputs:
          greeting: "{{ steps.compose.output.text }}"
          path: "{{ steps.save.output.path }}"
    """,
    "broken.yaml": """
        id: broken
        steps:
          - id: read
            tool: sire:local/file.read
            with: {path: missing.txt}
          - id: after
            tool: sire:local/echo
            needs: [read]
    """,
    "slow.yaml": """
        id: slow
        inputs:
          seconds: {type: number, default: 60}
        steps:
          - id: first
            tool: sire:local/echo
          - id: wait
            tool: sire:local/sleep
            needs: [first]
            with: {seconds: "{{ inputs.seconds }}"}
          - id: after
            tool: sire:local/echo
            needs: [wait]
    """,
}


class Served(NamedTuple):
    """What a served process serves and where it keeps things."""

    home: Path
    workspace: Path
    workflows: dict[str, Path]

    def argv(self, *extra: str) -> list[str]:
        """`sire mcp serve` with every workflow and the workspace, plus `extra`."""
        args = [sys.executable, "-m", "sire", "mcp", "serve", "--workspace", str(self.workspace)]
        for path in self.workflows.values():
            args += ["--workflow", str(path)]
        return [*args, *extra]

    def env(self) -> dict[str, str]:
        return {**os.environ, "SIRE_HOME": str(self.home)}


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    root = tmp_path_factory.mktemp("served")
    home = root / "home"
    home.mkdir()
    (home / "config.yaml").write_text(f"exec:\n  allow: {list(EXEC_ALLOW)}\n")
    workspace = root / "workspace"
    workspace.mkdir()
    (workspace / "notes.txt").write_text("Sire keeps notes.\n")
    files = {}
    for name, text in WORKFLOWS.items():
        files[name] = root / name
        files[name].write_text(textwrap.dedent(text))
    return Served(home, workspace, files)


class Process(NamedTuple):
    process: subprocess.Popen[str]
    ready: str
    stderr: queue.Queue[str]


def start(argv: list[str], env: dict[str, str]) -> Process:
    """Start `argv` and wait (bounded) for its one ready line on stderr."""
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.put(line)

    threading.Thread(target=pump, name="serve-stderr", daemon=True).start()
    try:
        ready = lines.get(timeout=START_TIMEOUT)
    except queue.Empty:
        stop(process)
        raise TimeoutError(f"{argv} printed nothing within {START_TIMEOUT} s") from None
    return Process(process, ready.strip(), lines)


def stop(process: subprocess.Popen[str]) -> int:
    """SIGTERM, then SIGKILL if it does not end; its exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
            return -9
    return process.returncode


class HttpServe(NamedTuple):
    url: str
    process: Process


@pytest.fixture(scope="session")
def http_serve(served: Served) -> Iterator[HttpServe]:
    """`sire mcp serve --transport http --port 0`, for the whole session."""
    proc = start(served.argv("--transport", "http", "--port", "0"), served.env())
    url = proc.ready.rpartition(" on ")[2].partition(" ")[0]
    assert proc.ready.startswith("sire: serving MCP on http://127.0.0.1:"), proc.ready
    try:
        yield HttpServe(url, proc)
    finally:
        code = stop(proc.process)
    assert code == 0, f"SIGTERM should stop the server cleanly (exit {code})"


def stdio_parameters(served: Served) -> Any:
    from mcp.client.stdio import StdioServerParameters

    argv = served.argv()
    return StdioServerParameters(command=argv[0], args=argv[1:], env=served.env())


class _Handler(BaseHTTPRequestHandler):
    """A tiny JSON endpoint with fixed headers, so two calls get identical responses."""

    def do_GET(self) -> None:
        body = b'{"hello": "world", "items": [1, 2, 3]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def date_time_string(self, timestamp: float | None = None) -> str:
        return "Thu, 01 Jan 2026 00:00:00 GMT"

    def version_string(self) -> str:
        return "sire-test"

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture(scope="session")
def http_endpoint() -> Iterator[str]:
    """A local HTTP server for `http.request`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, name="http-endpoint", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/data"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
