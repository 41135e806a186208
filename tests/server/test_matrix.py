"""Every endpoint against every kind of caller: allowed or refused, and what the audit says."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from fastapi.testclient import TestClient

from sire.config import Config
from sire.model.execution import (
    Execution,
    ExecutionStatus,
    StepState,
    StepStatus,
    new_execution_id,
)
from sire.server.app import create_app
from sire.storage.base import Store

from .conftest import Harness, headers

Request = tuple[str, str, dict[str, Any] | None]  # method, path, JSON body

_unique = itertools.count()


def definition(workflow_id: str) -> str:
    # A new description makes a new version, so every allowed registration is a 201.
    return (
        f"id: {workflow_id}\ndescription: version {next(_unique)}\n"
        "steps:\n  - {id: a, tool: 'sire:local/echo'}\n"
    )


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """One app for the whole table (no agent: started executions stay pending)."""
    root = tmp_path_factory.mktemp("matrix")
    app = create_app(Config(home=root), db=f"sqlite:///{root / 'sire.db'}", workspace=root)
    with TestClient(app) as client:
        harness = Harness(client)
        _, admin = harness.token("admin")
        for workflow_id in ("wf", "other"):
            answer = client.post(
                "/v1/workflows",
                json={"definition": definition(workflow_id)},
                headers=headers(admin),
            )
            assert answer.status_code == 201, answer.text
            started = client.post(
                f"/v1/workflows/{workflow_id}/executions", json={}, headers=headers(admin)
            )
            assert started.status_code == 201, started.text
        yield harness


def pending(h: Harness) -> str:
    """A new pending execution of `wf`."""
    _, admin = h.token("admin")
    answer = h.client.post("/v1/workflows/wf/executions", json={}, headers=headers(admin))
    assert answer.status_code == 201, answer.text
    execution_id: str = answer.json()["execution_id"]
    return execution_id


def failed(h: Harness) -> str:
    """A new failed execution of `wf` (as a driver leaves one whose step failed)."""

    async def create(store: Store) -> str:
        version = await store.get_workflow("wf")
        execution = Execution(
            new_execution_id(),
            "wf",
            version.workflow_hash,
            status=ExecutionStatus.FAILED,
            error="step 'a' failed: boom",
            step_states={"a": StepState(StepStatus.FAILED, error="boom", attempts=1)},
        )
        await store.create_execution(execution, await store.get_definition(version.workflow_hash))
        return execution.id

    return h.run(create, h.store)


def with_artifact(h: Harness) -> str:
    """A completed execution of `wf` whose step output went to the artifact store; its path."""

    async def create(store: Store) -> str:
        from sire.artifacts import digest_of

        version = await store.get_workflow("wf")
        execution_id = new_execution_id()
        artifacts = h.client.app.state.api.artifacts  # type: ignore[attr-defined]
        ref = await artifacts.put(execution_id, b'{"big": true}')
        execution = Execution(
            execution_id,
            "wf",
            version.workflow_hash,
            status=ExecutionStatus.COMPLETED,
            step_states={"a": StepState(StepStatus.COMPLETED, ref, attempts=1)},
        )
        await store.create_execution(execution, await store.get_definition(version.workflow_hash))
        return f"/v1/executions/{execution_id}/artifacts/{digest_of(ref)}"

    return h.run(create, h.store)


class Endpoint(NamedTuple):
    name: str
    action: str | None  # what the audit log calls it (None: never audited)
    role: str | None  # the role it needs (None: no token at all)
    scope: (
        str  # "wf": on workflow wf · "all": on every workflow · "any": any token, results filtered
    )
    mutating: bool
    ok: int
    request: Callable[[Harness], Request]


ENDPOINTS = [
    Endpoint("health", None, None, "any", False, 200, lambda h: ("GET", "/v1/health", None)),
    Endpoint(
        "register",
        "workflow.register",
        "admin",
        "wf",
        True,
        201,
        lambda h: ("POST", "/v1/workflows", {"definition": definition("wf")}),
    ),
    Endpoint(
        "list-workflows",
        "workflow.list",
        "viewer",
        "any",
        False,
        200,
        lambda h: ("GET", "/v1/workflows", None),
    ),
    Endpoint(
        "get-workflow",
        "workflow.get",
        "viewer",
        "wf",
        False,
        200,
        lambda h: ("GET", "/v1/workflows/wf?version=1", None),
    ),
    Endpoint(
        "start",
        "execution.start",
        "operator",
        "wf",
        True,
        201,
        lambda h: ("POST", "/v1/workflows/wf/executions", {"inputs": {}}),
    ),
    Endpoint(
        "list-executions",
        "execution.list",
        "viewer",
        "any",
        False,
        200,
        lambda h: ("GET", "/v1/executions?status=pending&limit=500", None),
    ),
    Endpoint(
        "list-executions-of-wf",
        "execution.list",
        "viewer",
        "wf",
        False,
        200,
        lambda h: ("GET", "/v1/executions?workflow_id=wf", None),
    ),
    Endpoint(
        "get-execution",
        "execution.get",
        "viewer",
        "wf",
        False,
        200,
        lambda h: ("GET", f"/v1/executions/{pending(h)}", None),
    ),
    Endpoint(
        "events",
        "execution.events",
        "viewer",
        "wf",
        False,
        200,
        lambda h: ("GET", f"/v1/executions/{pending(h)}/events?follow=false", None),
    ),
    Endpoint(
        "graph",
        "execution.graph",
        "viewer",
        "wf",
        False,
        200,
        lambda h: ("GET", f"/v1/executions/{pending(h)}/graph", None),
    ),
    Endpoint(
        "artifact",
        "execution.artifact",
        "viewer",
        "wf",
        False,
        200,
        lambda h: ("GET", with_artifact(h), None),
    ),
    Endpoint(
        "plan",
        "execution.plan",
        "viewer",
        "wf",
        False,
        200,
        lambda h: ("GET", f"/v1/executions/{pending(h)}/plan", None),
    ),
    Endpoint("me", "token.me", "viewer", "any", False, 200, lambda h: ("GET", "/v1/me", None)),
    Endpoint(
        "cancel",
        "execution.cancel",
        "operator",
        "wf",
        True,
        200,
        lambda h: ("POST", f"/v1/executions/{pending(h)}/cancel", None),
    ),
    Endpoint(
        "resume",
        "execution.resume",
        "operator",
        "wf",
        True,
        202,
        lambda h: ("POST", f"/v1/executions/{failed(h)}/resume", None),
    ),
    Endpoint(
        "create-token",
        "token.create",
        "admin",
        "all",
        True,
        201,
        lambda h: ("POST", "/v1/tokens", {"role": "viewer", "workflows": ["wf"]}),
    ),
    Endpoint(
        "list-tokens",
        "token.list",
        "admin",
        "all",
        False,
        200,
        lambda h: ("GET", "/v1/tokens", None),
    ),
    Endpoint(
        "revoke-token",
        "token.revoke",
        "admin",
        "all",
        True,
        200,
        lambda h: ("DELETE", f"/v1/tokens/{h.token('viewer')[0]}", None),
    ),
    Endpoint(
        "audit", "audit.list", "admin", "all", False, 200, lambda h: ("GET", "/v1/audit", None)
    ),
]

CALLERS = ["none", "bad", "expired", "revoked", "viewer", "operator", "admin", "other"]
RANK = {"viewer": 1, "operator": 2, "admin": 3}


def caller(h: Harness, who: str) -> tuple[str, str | None]:
    """(the actor the audit log should name, the token text to send)."""
    if who == "none":
        return "anonymous", None
    if who == "bad":
        return "anonymous", "sire_0123456789ab_" + "x" * 43
    if who == "other":
        return h.token("admin", ("other",))
    if who in ("expired", "revoked"):
        return h.token("admin", expired=who == "expired", revoked=who == "revoked")
    return h.token(who)


def expected(endpoint: Endpoint, who: str) -> int:
    if endpoint.role is None:
        return endpoint.ok
    if who in ("none", "bad", "expired", "revoked"):
        return 401
    if endpoint.scope == "any":
        return endpoint.ok
    if who == "other":  # admin, but only on another workflow
        return 403
    return endpoint.ok if RANK[who] >= RANK[endpoint.role] else 403


@pytest.mark.parametrize("who", CALLERS)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.name for e in ENDPOINTS])
def test_each_caller_is_allowed_or_refused_by_role_and_audited(
    h: Harness, endpoint: Endpoint, who: str
) -> None:
    actor, text = caller(h, who)
    method, path, body = endpoint.request(h)
    mark = h.last_audit()

    answer = h.client.request(method, path, json=body, headers=headers(text))

    want = expected(endpoint, who)
    assert answer.status_code == want, answer.text
    if want >= 400:
        assert set(answer.json()) == {"error"}
        assert answer.json()["error"]
    if want == 401:
        assert answer.headers["www-authenticate"] == "Bearer"
    entries = h.audit_after(mark)
    if endpoint.action is None or (want < 400 and not endpoint.mutating):
        assert entries == []
        return
    assert len(entries) == 1, entries
    entry = entries[0]
    assert (entry.actor, entry.action, entry.allowed) == (actor, endpoint.action, want < 400)
    assert entry.detail["status"] == want
    if text is not None:
        assert text not in str(entry)
        assert text.split("_", 2)[2] not in str(entry)  # the secret part


def test_a_grant_on_another_workflow_lists_only_that_workflow(h: Harness) -> None:
    _, text = h.token("viewer", ("other",))

    workflows = h.client.get("/v1/workflows", headers=headers(text)).json()["workflows"]
    executions = h.client.get("/v1/executions", headers=headers(text)).json()["executions"]

    assert [w["workflow_id"] for w in workflows] == ["other"]
    assert executions
    assert {e["workflow_id"] for e in executions} == {"other"}


def test_a_global_viewer_lists_every_workflow(h: Harness) -> None:
    _, text = h.token("viewer")

    workflows = h.client.get("/v1/workflows", headers=headers(text)).json()["workflows"]

    assert {w["workflow_id"] for w in workflows} == {"wf", "other"}


def test_an_operator_on_one_workflow_may_start_it_but_not_define_it_or_start_another(
    h: Harness,
) -> None:
    _, text = h.token("operator", ("wf",))

    start = h.client.post("/v1/workflows/wf/executions", json={}, headers=headers(text))
    other = h.client.post("/v1/workflows/other/executions", json={}, headers=headers(text))
    define = h.client.post(
        "/v1/workflows", json={"definition": definition("wf")}, headers=headers(text)
    )

    assert (start.status_code, other.status_code, define.status_code) == (201, 403, 403)
    assert "operator role on workflow 'other'" in other.json()["error"]


@pytest.mark.parametrize(
    "value",
    ["Bearer sire_nope", "Bearer not-a-token", "Basic dXNlcjpwYXNz", "Bearer ", "Bearer sire_0_x"],
)
def test_malformed_credentials_are_401_and_audited_as_anonymous(h: Harness, value: str) -> None:
    mark = h.last_audit()

    answer = h.client.get("/v1/workflows", headers={"Authorization": value})

    assert answer.status_code == 401
    [entry] = h.audit_after(mark)
    assert (entry.actor, entry.allowed, entry.action) == ("anonymous", False, "workflow.list")


def test_a_token_whose_id_does_not_match_its_secret_is_refused(h: Harness) -> None:
    _, text = h.token("admin")
    _, token_id, secret = text.split("_", 2)
    forged = f"sire_{'0' * 12 if token_id != '0' * 12 else '1' * 12}_{secret}"

    assert h.client.get("/v1/workflows", headers=headers(forged)).status_code == 401


def test_a_token_expires_between_two_calls(tmp_path: Path) -> None:
    from sire.server.auth import mint
    from sire.testing import FakeClock

    clock = FakeClock()
    app = create_app(Config(home=tmp_path), db=f"sqlite:///{tmp_path / 'x.db'}", clock=clock)
    with TestClient(app) as client:
        harness = Harness(client)
        record, text = mint("viewer", now=clock.now, expires_at=clock.now + 60)
        harness.run(harness.store.create_token, record)

        before = client.get("/v1/workflows", headers=headers(text))
        clock.now += 61
        after = client.get("/v1/workflows", headers=headers(text))

    assert (before.status_code, after.status_code) == (200, 401)
    assert after.json()["error"] == f"the API token {record.id} is expired"
