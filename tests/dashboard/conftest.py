"""Dashboard fixtures: a real `sire server --agent` process, tokens minted by the CLI,
workflows registered over the API, and Debian's chromium driven by Playwright.

Without chromium or the playwright package the browser tests are skipped, saying
why; under CI=true they fail instead. Screenshots go to $SIRE_TEST_ARTIFACTS
[default: build/test-artifacts/dashboard].
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("SIRE_TEST_ARTIFACTS") or ROOT / "build/test-artifacts/dashboard")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

#: greets, sleeps long enough to be seen running, fans out, then joins
HELLO = """\
id: dash-hello
description: Greets someone, naps, echoes each tag, then joins it all.
inputs:
  name: {type: string, description: Who to greet}
  tags: {type: array, default: [red, green]}
  loud: {type: boolean, default: false}
steps:
  - id: greet
    tool: sire:local/text.template
    with: {template: "Hello, {{ inputs.name }}!"}
  - id: nap
    tool: sire:local/sleep
    needs: [greet]
    with: {seconds: 0.8}
  - id: each
    tool: sire:local/echo
    for_each: "{{ inputs.tags }}"
    with: {tag: "{{ item }}"}
  - id: join
    tool: sire:local/echo
    needs: [nap]
    with: {greeting: "{{ steps.greet.output.text }}", tags: "{{ steps.each.output.items }}"}
outputs:
  greeting: "{{ steps.join.output.greeting }}"
"""

#: its first step reads a file that is not there
BROKEN = """\
id: dash-broken
description: Reads a file that does not exist.
steps:
  - id: read
    tool: sire:local/file.read
    with: {path: no-such-file.txt}
  - id: after
    tool: sire:local/echo
    needs: [read]
    with: {text: "{{ steps.read.output.content }}"}
"""

#: runs until cancelled
SLOW = """\
id: dash-slow
description: Sleeps for a minute.
steps:
  - id: nap
    tool: sire:local/sleep
    with: {seconds: 60}
"""


@dataclass
class Dashboard:
    """The running server: its base URL and a token per role."""

    base: str
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def ui(self) -> str:
        return f"{self.base}/ui/"

    def call(self, method: str, path: str, role: str = "admin", body: Any = None) -> Any:
        """One API call as `role`; its JSON answer (an HTTP error fails the test)."""
        status, answer = request(self.base, method, path, self.tokens.get(role, role), body)
        assert status < 400, f"{method} {path}: {status} {answer}"
        return answer

    def start(self, workflow_id: str, inputs: dict[str, Any] | None = None) -> str:
        path = f"/v1/workflows/{workflow_id}/executions"
        return str(self.call("POST", path, "operator", {"inputs": inputs or {}})["execution_id"])

    def wait(self, execution_id: str) -> str:
        """Read its event stream to the end: the execution's final status."""
        stream = self.call("GET", f"/v1/executions/{execution_id}/events")
        end = stream.rsplit("event: end\ndata: ", 1)[1]
        return str(json.loads(end.splitlines()[0])["status"])


def request(
    base: str, method: str, path: str, token: str | None = None, body: Any = None
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    call = urllib.request.Request(base + path, data=data, method=method)
    call.add_header("Content-Type", "application/json")
    if token is not None:
        call.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(call, timeout=20) as answer:
            raw = answer.read().decode()
            kind = answer.headers.get("content-type", "")
            return answer.status, json.loads(raw) if kind.startswith("application/json") else raw
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read().decode())


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI=true: the dashboard's browser tests must run in CI")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    home = tmp_path_factory.mktemp("dashboard-home")
    workspace = tmp_path_factory.mktemp("dashboard-workspace")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIRE_")}
    env["SIRE_HOME"] = str(home)
    sire = [sys.executable, "-m", "sire"]
    minting = {
        role: subprocess.Popen(
            [*sire, "token", "create", "--role", role, "--name", f"dashboard-{role}"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for role in ("admin", "operator", "viewer")
    }
    tokens = {}
    for role, process in minting.items():
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        tokens[role] = out.strip()
    log = (home / "server.log").open("w")
    server = subprocess.Popen(
        [*sire, "server", "--agent", "--port", "0", "--workspace", str(workspace)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        assert server.stdout is not None
        ready, _, _ = select.select([server.stdout], [], [], 30)
        line = server.stdout.readline() if ready else ""
        assert line.startswith("sire server listening on "), (
            f"the server did not start: {line!r}; {(home / 'server.log').read_text()}"
        )
        running = Dashboard(line.split()[4], tokens)
        deadline = time.monotonic() + 20
        while request(running.base, "GET", "/v1/health")[0] != 200:
            assert time.monotonic() < deadline, "the server's /v1/health never answered 200"
            time.sleep(0.1)
        for definition in (HELLO, BROKEN, SLOW):
            running.call("POST", "/v1/workflows", "admin", {"definition": definition})
        yield running
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium, for one test module at a time: Playwright's sync API runs an event loop in
    the main thread while it is open, and every later asyncio test would find it there."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1)")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        _missing("chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, dashboard: Dashboard) -> Iterator[Any]:
    """A fresh browser context on the dashboard; an uncaught script error fails the test."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(10_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, f"script errors in the page: {errors}"


@pytest.fixture
def shot() -> Any:
    """Save a screenshot of the page as a test artifact; its path."""

    def save(page: Any, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save
