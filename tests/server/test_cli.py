"""`sire token create|list|revoke` and `sire audit` on the default SQLite store."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sire.config import load_config
from sire.server.app import create_app


def test_a_created_token_is_printed_once_stored_hashed_and_works_against_the_api(
    sire: Any, sire_home: Path
) -> None:
    created = sire("token", "create", "--role", "operator", "--workflow", "hello", "--name", "ci")

    assert created.code == 0, created.err
    text = created.out.strip()
    assert text.startswith("sire_")
    assert "\n" not in text
    assert "operator on 'hello'" in created.err
    assert "shown only this once" in created.err
    _token_id, secret = text.split("_", 2)[1:]
    rows = sqlite3.connect(sire_home / "sire.db").execute("SELECT * FROM tokens").fetchall()
    assert secret not in str(rows)
    assert hashlib.sha256(secret.encode()).hexdigest() in str(rows)
    with TestClient(create_app(load_config())) as client:
        allowed = client.get("/v1/executions?workflow_id=hello", headers=_bearer(text))
        refused = client.get("/v1/executions?workflow_id=other", headers=_bearer(text))
    assert (allowed.status_code, refused.status_code) == (200, 403)


def test_tokens_list_and_revoke_with_json(sire: Any) -> None:
    first = sire("token", "create", "--role", "admin", "--expires", "30d", "--json").json()
    second = sire("token", "create", "--role", "viewer", "--json").json()

    revoked = sire("token", "revoke", second["id"], "--json")
    listed = sire("token", "list", "--json").json()["tokens"]
    text = sire("token", "list").out

    assert revoked.code == 0
    assert revoked.json() == {"id": second["id"], "revoked": True}
    assert [(t["id"], t["status"]) for t in listed] == [
        (first["id"], "active"),
        (second["id"], "revoked"),
    ]
    assert first["expires_at"] - first["created_at"] == pytest.approx(30 * 86400)
    assert first["grants"] == [{"role": "admin", "workflow_id": None}]
    assert "token" not in listed[0]
    assert first["token"] not in text
    assert f"{second['id']}  revoked  viewer@*" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "root"], "unknown role 'root' (expected one of viewer, operator, admin)"),
        (["--role", "admin", "--expires", "soon"], "--expires: 'soon' is not a duration"),
        (["--role", "admin", "--expires", "0s"], "expiry must be in the future"),
        (["--role", "admin", "--workflow", "Bad Id"], "'Bad Id' is not a workflow id"),
    ],
)
def test_a_bad_token_request_exits_2_with_one_sentence(
    sire: Any, args: list[str], message: str
) -> None:
    result = sire("token", "create", *args)

    assert result.code == 2
    assert result.out == ""
    assert message in result.err
    assert "Traceback" not in result.err


def test_revoking_an_unknown_token_exits_2(sire: Any) -> None:
    result = sire("token", "revoke", "000000000000")

    assert result.code == 2
    assert "no active API token with id '000000000000'" in result.err


def test_the_audit_shows_cli_and_api_actions_in_order(sire: Any) -> None:
    admin = sire("token", "create", "--role", "admin", "--json").json()
    sire("token", "revoke", admin["id"])
    with TestClient(create_app(load_config())) as client:
        client.get("/v1/workflows", headers=_bearer(admin["token"]))  # revoked: denied

    entries = sire("audit", "--json").json()["entries"]
    text = sire("audit", "--after", "1").out.splitlines()

    assert [(e["seq"], e["action"], e["allowed"]) for e in entries] == [
        (1, "token.create", True),
        (2, "token.revoke", True),
        (3, "workflow.list", False),
    ]
    assert entries[0]["actor"].startswith("cli:")
    assert entries[2]["actor"] == admin["id"]
    assert entries[2]["detail"] == {
        "status": 401,
        "error": f"the API token {admin['id']} is revoked",
    }
    assert admin["token"] not in str(entries)
    assert len(text) == 2
    assert "denied" in text[1]
    assert f"{admin['id']}  workflow.list" in text[1]
    assert sire("audit", "--limit", "1", "--json").json()["entries"][0]["seq"] == 1


def _bearer(text: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {text}"}
