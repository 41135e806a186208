"""The API end to end in-process: define, start, an in-process agent drives, events stream."""

from __future__ import annotations

import io
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from .conftest import HELLO, Harness, headers

BROKEN = """\
id: fixable
steps:
  - {id: first, tool: "sire:local/file.write", with: {path: a.txt, content: "a"}}
  - {id: second, tool: "sire:local/file.read", with: {path: missing.txt}, needs: [first]}
"""

SLOW = """\
id: slow
steps:
  - {id: nap, tool: "sire:local/sleep", with: {seconds: 30}}
"""


def sse(text: str) -> list[dict[str, Any]]:
    """The events of an event stream: each as {"id", "event", "data"}."""
    events = []
    for block in text.split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.splitlines():
            name, _, value = line.partition(": ")
            if name in ("id", "event"):
                fields[name] = value
            elif name == "data":
                fields["data"] = json.loads(value)
        if fields:
            events.append(fields)
    return events


def admin(h: Harness) -> dict[str, str]:
    return headers(h.token("admin")[1])


def register(h: Harness, text: str, auth: dict[str, str]) -> dict[str, Any]:
    answer = h.client.post("/v1/workflows", json={"definition": text}, headers=auth)
    assert answer.status_code in (200, 201), answer.text
    document: dict[str, Any] = answer.json()
    return document


def start(h: Harness, workflow_id: str, auth: dict[str, str], **body: Any) -> str:
    answer = h.client.post(f"/v1/workflows/{workflow_id}/executions", json=body, headers=auth)
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "pending"
    execution_id: str = answer.json()["execution_id"]
    return execution_id


def follow(h: Harness, execution_id: str, auth: dict[str, str]) -> list[dict[str, Any]]:
    """Read the execution's event stream to its end, live; fail if it has not ended in 20 s."""
    url = f"/v1/executions/{execution_id}/events"
    with ThreadPoolExecutor(1) as pool:
        reading = pool.submit(h.client.get, url, headers=auth)
        try:
            answer = reading.result(timeout=20)
        except TimeoutError:
            # Cancelling ends the stream, so the reader (and the test) can finish.
            h.client.post(f"/v1/executions/{execution_id}/cancel", headers=auth)
            raise AssertionError(f"the event stream of {execution_id} did not end") from None
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    return sse(answer.text)


def test_a_registered_workflow_runs_on_the_in_process_agent_and_its_events_stream_to_the_end(
    harness: Harness,
) -> None:
    auth = admin(harness)
    version = register(harness, HELLO, auth)
    execution_id = start(harness, "hello", auth, inputs={"name": "ada"})

    events = follow(harness, execution_id, auth)

    transitions = [(e["event"], e["data"].get("key"), e["data"]["status"]) for e in events[:-1]]
    assert transitions[0] == ("execution", None, "pending")
    assert ("step", "greet", "completed") in transitions
    assert transitions[-1] == ("execution", None, "completed")
    assert events[-1] == {"event": "end", "data": {"status": "completed", "finished": True}}
    assert [int(e["id"]) for e in events[:-1]] == sorted(int(e["id"]) for e in events[:-1])
    execution = harness.client.get(f"/v1/executions/{execution_id}", headers=auth).json()
    assert execution["status"] == "completed"
    assert execution["workflow_hash"] == version["workflow_hash"]
    assert execution["outputs"] == {"greet": {"msg": "hi ada"}}
    assert execution["steps"]["greet"]["status"] == "completed"


def test_an_event_stream_resumes_after_the_last_event_id(harness: Harness) -> None:
    auth = admin(harness)
    register(harness, HELLO, auth)
    execution_id = start(harness, "hello", auth)
    events = follow(harness, execution_id, auth)
    middle = events[1]["id"]

    answer = harness.client.get(
        f"/v1/executions/{execution_id}/events", headers={**auth, "Last-Event-ID": middle}
    )

    assert [e.get("id") for e in sse(answer.text)] == [e.get("id") for e in events[2:]]


def test_registering_the_same_definition_twice_keeps_one_version(harness: Harness) -> None:
    auth = admin(harness)
    first = harness.client.post("/v1/workflows", json={"definition": HELLO}, headers=auth)
    again = harness.client.post("/v1/workflows", json={"definition": HELLO}, headers=auth)
    changed = harness.client.post(
        "/v1/workflows", json={"definition": HELLO.replace("hi ", "hello ")}, headers=auth
    )

    assert (first.status_code, again.status_code, changed.status_code) == (201, 200, 201)
    assert [a.json()["version"] for a in (first, again, changed)] == [1, 1, 2]
    old = harness.client.get("/v1/workflows/hello?version=1", headers=auth).json()
    assert old["definition"] == HELLO
    assert old["steps"] == ["greet"]
    assert old["inputs"] == {"name": {"type": "string", "default": "world"}}


def test_a_failed_execution_resumed_over_the_api_reruns_only_what_failed(
    harness: Harness, tmp_path: Path
) -> None:
    auth = admin(harness)
    register(harness, BROKEN, auth)
    execution_id = start(harness, "fixable", auth)
    assert follow(harness, execution_id, auth)[-1]["data"]["status"] == "failed"
    (tmp_path / "missing.txt").write_text("found")

    resumed = harness.client.post(f"/v1/executions/{execution_id}/resume", headers=auth)

    assert resumed.status_code == 202, resumed.text
    assert follow(harness, execution_id, auth)[-1]["data"]["status"] == "completed"
    execution = harness.client.get(f"/v1/executions/{execution_id}", headers=auth).json()
    assert execution["steps"]["first"]["attempts"] == 1  # completed before: not run again
    assert execution["steps"]["second"]["output"]["content"] == "found"


def test_only_a_failed_execution_can_be_resumed_and_only_an_unfinished_one_cancelled(
    harness: Harness,
) -> None:
    auth = admin(harness)
    register(harness, HELLO, auth)
    execution_id = start(harness, "hello", auth)
    follow(harness, execution_id, auth)

    resume = harness.client.post(f"/v1/executions/{execution_id}/resume", headers=auth)
    cancel = harness.client.post(f"/v1/executions/{execution_id}/cancel", headers=auth)

    assert (resume.status_code, cancel.status_code) == (409, 409)
    assert "only a failed execution can be resumed" in resume.json()["error"]
    assert "already completed" in cancel.json()["error"]


def test_cancelling_a_running_execution_stops_its_driver_and_ends_the_stream(
    harness: Harness,
) -> None:
    auth = admin(harness)
    register(harness, SLOW, auth)
    execution_id = start(harness, "slow", auth)
    for _ in range(500):  # until the agent has it running (bounded: ~10 s)
        status = harness.client.get(f"/v1/executions/{execution_id}", headers=auth).json()
        if (
            status["steps"].get("nap", {}).get("status") == "running"
            or status["status"] == "running"
        ):
            break
        harness.run(_pause)
    assert status["status"] == "running"

    cancel = harness.client.post(f"/v1/executions/{execution_id}/cancel", headers=auth)

    assert cancel.status_code == 200
    assert follow(harness, execution_id, auth)[-1]["data"]["status"] == "cancelled"


async def _pause() -> None:
    import asyncio

    await asyncio.sleep(0.02)


def test_bad_input_gets_a_one_sentence_error_with_the_right_status(harness: Harness) -> None:
    auth = admin(harness)
    register(harness, HELLO, auth)
    post = harness.client.post
    cases = {
        "yaml": post("/v1/workflows", json={"definition": "id: [unclosed"}, headers=auth),
        "cycle": post(
            "/v1/workflows",
            json={
                "definition": "id: c\nsteps:\n"
                "  - {id: a, tool: 'sire:local/echo', needs: [b]}\n"
                "  - {id: b, tool: 'sire:local/echo', needs: [a]}\n"
            },
            headers=auth,
        ),
        "tool": post(
            "/v1/workflows",
            json={"definition": "id: t\nsteps:\n  - {id: a, tool: 'sire:local/nope'}\n"},
            headers=auth,
        ),
        "json": post(
            "/v1/workflows", content=b"{", headers={**auth, "content-type": "application/json"}
        ),
        "field": post("/v1/workflows", json={"yaml": HELLO}, headers=auth),
        "input": post(
            "/v1/workflows/hello/executions", json={"inputs": {"nme": "x"}}, headers=auth
        ),
        "type": post("/v1/workflows/hello/executions", json={"inputs": {"name": 3}}, headers=auth),
        "nan": post(
            "/v1/workflows/hello/executions",
            content=b'{"inputs": {"name": NaN}}',
            headers={**auth, "content-type": "application/json"},
        ),
        "surrogate": post(
            "/v1/workflows/hello/executions",
            content=b'{"inputs": {"name": "\\ud800"}}',
            headers={**auth, "content-type": "application/json"},
        ),
        "deep": post(
            "/v1/workflows/hello/executions",
            content=b'{"inputs": {"name": ' + b"[" * 100 + b"]" * 100 + b"}}",
            headers={**auth, "content-type": "application/json"},
        ),
        "key": post(
            "/v1/tokens",
            content=b'{"role": "viewer", "\\ud800": 1}',
            headers={**auth, "content-type": "application/json"},
        ),
        "limit": harness.client.get("/v1/executions?limit=0", headers=auth),
        "status": harness.client.get("/v1/executions?status=sleeping", headers=auth),
    }

    for name, answer in cases.items():
        assert answer.status_code == 400, (name, answer.text)
        error = answer.json()["error"]
        assert error, name
        assert "\n" not in error, (name, error)
        assert "Traceback" not in error, (name, error)
    assert "cycle" in cases["cycle"].json()["error"]
    assert "no input 'nme'" in cases["input"].json()["error"]


def test_unknown_things_are_404(harness: Harness) -> None:
    auth = admin(harness)
    get, post, delete = harness.client.get, harness.client.post, harness.client.delete

    answers = [
        get("/v1/workflows/nothing", headers=auth),
        get("/v1/executions/01NOTANEXECUTION", headers=auth),
        post("/v1/executions/01NOTANEXECUTION/cancel", headers=auth),
        post("/v1/workflows/nothing/executions", json={}, headers=auth),
        delete("/v1/tokens/000000000000", headers=auth),
        get("/v1/no/such/route", headers=auth),
    ]

    assert [a.status_code for a in answers] == [404] * len(answers)
    assert all(set(a.json()) == {"error"} for a in answers)


def test_a_body_over_the_limit_is_413(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from sire.config import Config
    from sire.server.app import create_app

    app = create_app(
        Config(home=tmp_path), db=f"sqlite:///{tmp_path / 'x.db'}", max_body_bytes=1000
    )
    with TestClient(app) as client:
        h = Harness(client)
        auth = admin(h)
        mark = h.last_audit()
        answer = client.post("/v1/workflows", json={"definition": "x" * 2000}, headers=auth)
        chunked = client.post("/v1/workflows", content=iter([b"x" * 600, b"x" * 600]), headers=auth)
        audited = h.audit_after(mark)

    assert (answer.status_code, chunked.status_code) == (413, 413)
    assert "limit of 1000 bytes" in answer.json()["error"]
    assert audited == []  # refused before anyone was asked who they are


def test_the_audit_keeps_input_names_but_never_their_values(harness: Harness) -> None:
    auth = admin(harness)
    register(harness, HELLO, auth)
    mark = harness.last_audit()

    start(harness, "hello", auth, inputs={"name": "very-private-value"})
    harness.client.post(
        "/v1/workflows/hello/executions",
        json={"inputs": {"name": ["very-private-list"]}},
        headers=auth,
    )

    started, refused = harness.audit_after(mark)
    assert started.detail["inputs"] == ["name"]
    assert started.detail["status"] == 201
    assert refused.detail == {"status": 400, "error": "InputError"}
    assert "very-private" not in str(started) + str(refused)


def test_tokens_are_managed_over_the_api_and_a_revoked_one_stops_working(
    harness: Harness,
) -> None:
    auth = admin(harness)

    created = harness.client.post(
        "/v1/tokens",
        json={"role": "operator", "workflows": ["hello"], "name": "ci", "expires_in": "30d"},
        headers=auth,
    )
    token = created.json()
    listed = harness.client.get("/v1/tokens", headers=auth).json()["tokens"]
    works = harness.client.get("/v1/workflows", headers=headers(token["token"]))
    revoked = harness.client.delete(f"/v1/tokens/{token['id']}", headers=auth)
    refused = harness.client.get("/v1/workflows", headers=headers(token["token"]))

    assert created.status_code == 201
    assert token["grants"] == [{"role": "operator", "workflow_id": "hello"}]
    assert token["expires_at"] - token["created_at"] == 30 * 86400
    assert "token" not in next(t for t in listed if t["id"] == token["id"])
    assert token["token"] not in json.dumps(listed)
    assert (works.status_code, revoked.status_code, refused.status_code) == (200, 200, 401)
    assert revoked.json()["status"] == "revoked"
    assert refused.json()["error"] == f"the API token {token['id']} is revoked"


def test_health_needs_no_token_and_reports_the_agent(harness: Harness) -> None:
    answer = harness.client.get("/v1/health")

    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"
    assert answer.json()["agent"] == "running"


def test_the_openapi_document_lists_every_route_with_its_errors(harness: Harness) -> None:
    document = harness.client.get("/openapi.json").json()

    operations = [
        (path, method, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
    ]
    assert len(operations) == 18
    for path, method, op in operations:
        assert "422" not in op["responses"], (path, method)
        if path != "/v1/health":
            assert {"401", "503"} <= set(op["responses"]), (path, method)
            assert op["security"] == [{"HTTPBearer": []}]
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_a_secret_in_an_output_is_shown_masked_by_the_api_and_its_event_stream(
    sire: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from sire.config import load_config
    from sire.server.app import create_app

    monkeypatch.setattr(sys, "stdin", io.StringIO("hunter2-very-secret"))
    assert sire("secret", "set", "api_token").code == 0
    leaky = (
        "id: leaky\nsteps:\n"
        "  - {id: a, tool: 'sire:local/echo', with: {auth: 'Bearer {{ secrets.api_token }}'}}\n"
    )
    app = create_app(load_config(), agent=True, workspace=tmp_path, poll_interval=0.02)
    with TestClient(app) as client:
        h = Harness(client)
        auth = admin(h)
        register(h, leaky, auth)
        execution_id = start(h, "leaky", auth)
        stream = client.get(f"/v1/executions/{execution_id}/events", headers=auth).text
        shown = client.get(f"/v1/executions/{execution_id}", headers=auth).json()

    assert shown["status"] == "completed"
    assert shown["outputs"] == {"a": {"auth": "Bearer ***"}}
    assert shown["steps"]["a"]["output"] == {"auth": "Bearer ***"}
    assert "hunter2" not in json.dumps(shown) + stream


def test_an_artifact_shows_as_a_link_the_api_serves_and_the_graph_and_me_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from sire.config import load_config
    from sire.server.app import create_app

    monkeypatch.setenv("SIRE_ARTIFACT_THRESHOLD", "50")
    big = (
        "id: big\nsteps:\n"
        "  - {id: a, tool: 'sire:local/text.template', with: {template: \"{{ 'x' * 100 }}\"}}\n"
        "  - {id: b, tool: 'sire:local/echo', needs: [a]}\n"
    )
    app = create_app(load_config(), agent=True, workspace=tmp_path, poll_interval=0.02)
    with TestClient(app) as client:
        h = Harness(client)
        auth = admin(h)
        register(h, big, auth)
        execution_id = start(h, "big", auth)
        follow(h, execution_id, auth)
        shown = client.get(f"/v1/executions/{execution_id}", headers=auth).json()
        link = shown["steps"]["a"]["output"]["$artifact"]
        served = client.get(link, headers=auth)
        missing = client.get(f"/v1/executions/{execution_id}/artifacts/{'0' * 64}", headers=auth)
        graph = client.get(f"/v1/executions/{execution_id}/graph", headers=auth).json()
        me = client.get("/v1/me", headers=auth).json()
        plan = client.get(f"/v1/executions/{execution_id}/plan", headers=auth).json()

    assert shown["status"] == "completed"
    assert link.startswith(f"/v1/executions/{execution_id}/artifacts/")
    assert "file:" not in json.dumps(shown)  # the store's own URIs stay inside
    assert served.status_code == 200
    assert served.json() == {"text": "x" * 100}
    assert missing.status_code == 404
    assert [(s["id"], s["depends"]) for s in graph["steps"]] == [("a", []), ("b", ["a"])]
    assert graph["steps"][0]["tool"] == "sire:local/text.template"
    assert me["grants"] == [{"role": "admin", "workflow_id": None}]
    # b has no `with:`: it was called with a's output (read back from the artifact store)
    assert plan["execution_id"] == execution_id
    assert [s["params"] for s in plan["steps"]] == [
        {"template": "x" * 100},  # rendered, as the tool got it
        {"text": "x" * 100},
    ]
