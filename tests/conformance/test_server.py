"""`sire mcp serve --transport http` against the conformance suite's server scenarios.

One server runs for the module, serving the built-in tools and, as workflows, the
suite's fixture tools that a workflow can express (`fixtures/*.yaml`, each named as the
suite names it). Every server scenario of the pinned suite is listed here: the protocol
scenarios a tools server takes part in, and the fixture scenarios served, must pass;
the others are listed with the reason and run as strict xfails, so a change on either
side shows. A check the suite only warns about fails the test too, unless `WARNINGS`
names it with the reason.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from remote.conftest import free_port

from .conftest import Outcome, Suite, record, run_server_suite

FIXTURES = sorted(Path(__file__).with_name("fixtures").glob("*.yaml"))

#: The scenarios `sire mcp serve` must pass.
SCENARIOS = [
    # The protocol, as any tools server speaks it.
    "server-initialize",
    "ping",
    "logging-set-level",
    "tools-list",
    "server-sse-multiple-streams",
    "server-sse-polling",
    "dns-rebinding-protection",
    # Fixture tools written as workflows (fixtures/).
    "tools-call-simple-text",
    "tools-call-error",
    "tools-call-with-progress",
]

_TOOLS_ONLY = "Sire serves tools only: it has no prompts, resources or completions to offer"
_JSON_ONLY = (
    "a workflow's result is JSON (served as structuredContent and its text): no step can "
    "answer with {} content"
)
_UNATTENDED = (
    "the fixture asks the client for {} in the middle of the call; a workflow runs "
    "unattended, and no step can ask its caller anything"
)
#: The other scenarios, with the reason each cannot pass.
NOT_APPLICABLE = {
    "completion-complete": _TOOLS_ONLY,
    "tools-call-image": _JSON_ONLY.format("image"),
    "tools-call-audio": _JSON_ONLY.format("audio"),
    "tools-call-embedded-resource": _JSON_ONLY.format("embedded resource"),
    "tools-call-mixed-content": _JSON_ONLY.format("text, image and resource"),
    "tools-call-with-logging": (
        "the fixture sends log notifications (notifications/message) during the call; "
        "`sire mcp serve` reports a workflow's steps as progress, and no step logs to the caller"
    ),
    "tools-call-sampling": _UNATTENDED.format("an LLM completion (sampling/createMessage)"),
    "tools-call-elicitation": _UNATTENDED.format("input (elicitation/create)"),
    "elicitation-sep1034-defaults": _UNATTENDED.format("input (elicitation/create)"),
    "elicitation-sep1330-enums": _UNATTENDED.format("input (elicitation/create)"),
    "json-schema-2020-12": (
        "the fixture json_schema_2020_12_tool is served and listed with "
        "`additionalProperties: false`, but a workflow's inputSchema is built by Sire from "
        "its inputs, so it carries no top-level `$schema` or `$defs`"
    ),
    "resources-list": _TOOLS_ONLY,
    "resources-read-text": _TOOLS_ONLY,
    "resources-read-binary": _TOOLS_ONLY,
    "resources-templates-read": _TOOLS_ONLY,
    "resources-subscribe": _TOOLS_ONLY,
    "resources-unsubscribe": _TOOLS_ONLY,
    "prompts-list": _TOOLS_ONLY,
    "prompts-get-simple": _TOOLS_ONLY,
    "prompts-get-with-args": _TOOLS_ONLY,
    "prompts-get-embedded-resource": _TOOLS_ONLY,
    "prompts-get-with-image": _TOOLS_ONLY,
}

_OLD_ERA_POST = (
    "the scenario posts its tools/call with `mcp-protocol-version: 2025-03-26`, and the "
    "MCP SDK's server sends SSE priming events (an event id, then the `retry` field) only "
    "to clients of 2025-11-25 or later, which can parse them; nor can a workflow express "
    "the scenario's `test_reconnection` fixture, which closes its SSE stream mid-call"
)
#: Checks the suite only warns about, accepted with the reason: (scenario, check id).
WARNINGS = {
    ("server-sse-polling", "server-sse-priming-event"): _OLD_ERA_POST,
    ("server-sse-polling", "server-sse-retry-field"): _OLD_ERA_POST,
}


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`sire mcp serve --transport http` with the fixture workflows; its URL."""
    home = tmp_path_factory.mktemp("conformance-serve")
    port = free_port()
    sire = Path(sys.executable).with_name("sire")
    argv = [str(sire), "mcp", "serve", "--transport", "http", "--port", str(port)]
    argv += ["--workspace", str(home), *(f"--workflow={path}" for path in FIXTURES)]
    env = {**os.environ, "SIRE_HOME": str(home), "SIRE_DB": f"sqlite:///{home / 'sire.db'}"}
    log = home / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=home)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"`sire mcp serve` exited with {process.returncode}: {log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"`sire mcp serve` did not listen on {port}: {log.read_text()}")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture(scope="module")
def outcomes(
    suite: Suite, serve: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Outcome]:
    """Every server scenario of the suite, run against the one server."""
    results = run_server_suite(suite, serve, tmp_path_factory.mktemp("conformance-server"))
    record("server", results, SCENARIOS, _accepted())
    return results


@pytest.mark.parametrize(
    "scenario",
    [
        *SCENARIOS,
        *(
            pytest.param(name, marks=pytest.mark.xfail(reason=reason, strict=True))
            for name, reason in NOT_APPLICABLE.items()
        ),
    ],
)
def test_server_passes_scenario(scenario: str, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes.get(scenario)
    if outcome is None:
        pytest.fail(f"the suite reported nothing for '{scenario}'", pytrace=False)
    if outcome.problems(_accepted().get(scenario, ())):
        pytest.fail(outcome.explain(_accepted().get(scenario, ())), pytrace=False)


def _accepted() -> dict[str, set[str]]:
    """The check ids of `WARNINGS`, by scenario."""
    accepted: dict[str, set[str]] = {}
    for scenario, check in WARNINGS:
        accepted.setdefault(scenario, set()).add(check)
    return accepted


def test_every_server_scenario_is_listed(suite: Suite) -> None:
    assert set(suite.scenarios("server")) == {*SCENARIOS, *NOT_APPLICABLE}
