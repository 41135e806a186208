"""The Store contract for the security records: secrets, workflow versions, tokens, audit.

Runs on every store (see conftest.py); durable stores are also read back through a
fresh connection.
"""

from __future__ import annotations

import pytest

from sire.errors import NotFoundError, StoreError
from sire.storage.base import Grant, Store, Token

from .conftest import StoreHarness


async def test_secrets_are_put_replaced_listed_and_deleted(
    store: Store, harness: StoreHarness
) -> None:
    await store.put_secret("b", "cipher-b", 10.0)
    await store.put_secret("a", "cipher-a1", 11.0)
    await store.put_secret("a", "cipher-a2", 12.0)

    other = await harness.reopen()
    assert await other.get_secrets() == {"a": "cipher-a2", "b": "cipher-b"}
    listed = await other.list_secrets()
    assert [(s.name, s.value, s.created_at, s.updated_at) for s in listed] == [
        ("a", "cipher-a2", 11.0, 12.0),
        ("b", "cipher-b", 10.0, 10.0),
    ]
    assert await store.delete_secret("a") is True
    assert await store.delete_secret("a") is False
    assert await (await harness.reopen()).get_secrets() == {"b": "cipher-b"}


async def test_registering_a_workflow_makes_versions_and_an_unchanged_one_is_not_new(
    store: Store, harness: StoreHarness
) -> None:
    first = await store.register_workflow("wf", "h1", "id: wf # 1", 1.0, "token-a")
    same = await store.register_workflow("wf", "h1", "id: wf # 1", 2.0, "token-b")
    second = await store.register_workflow("wf", "h2", "id: wf # 2", 3.0)
    await store.register_workflow("other", "h1", "id: wf # 1", 4.0)

    assert (first.version, first.workflow_hash, first.created_by) == (1, "h1", "token-a")
    assert same == first
    assert (second.version, second.workflow_hash, second.created_by) == (2, "h2", None)
    other = await harness.reopen()
    assert await other.get_workflow("wf") == second
    assert await other.get_workflow("wf", 1) == first
    assert await other.get_definition("h2") == "id: wf # 2"
    assert [(w.workflow_id, w.version) for w in await other.list_workflows()] == [
        ("other", 1),
        ("wf", 2),
    ]
    with pytest.raises(NotFoundError, match="no registered workflow 'wf' version 3"):
        await other.get_workflow("wf", 3)
    with pytest.raises(NotFoundError, match="no registered workflow 'nope'"):
        await other.get_workflow("nope")


def token(token_id: str, secret_hash: str, *grants: Grant, **fields: float) -> Token:
    return Token(token_id, f"name-{token_id}", secret_hash, tuple(grants), 100.0, **fields)


async def test_tokens_keep_their_grants_and_are_found_by_hash_and_revoked(
    store: Store, harness: StoreHarness
) -> None:
    viewer = token("t1", "hash-1", Grant("viewer"), Grant("operator", "wf"), expires_at=500.0)
    await store.create_token(viewer)
    await store.create_token(token("t2", "hash-2", Grant("admin")))

    other = await harness.reopen()
    found = await other.find_token("hash-1")
    assert found == viewer._replace(grants=(Grant("operator", "wf"), Grant("viewer", None)))
    assert [t.id for t in await other.list_tokens()] == ["t1", "t2"]
    with pytest.raises(NotFoundError):
        await other.find_token("hash-3")

    assert await store.revoke_token("t1", 200.0) is True
    assert await store.revoke_token("t1", 300.0) is False
    assert await store.revoke_token("t9", 300.0) is False
    assert (await (await harness.reopen()).find_token("hash-1")).revoked_at == 200.0


async def test_a_token_with_a_taken_id_or_hash_is_refused(store: Store) -> None:
    await store.create_token(token("t1", "hash-1", Grant("viewer")))
    with pytest.raises(StoreError, match="exists"):
        await store.create_token(token("t1", "hash-9"))
    with pytest.raises(StoreError, match="exists"):
        await store.create_token(token("t9", "hash-1"))
    assert [t.id for t in await store.list_tokens()] == ["t1"]


async def test_the_audit_log_appends_in_order_and_reads_after_a_seq(
    store: Store, harness: StoreHarness
) -> None:
    one = await store.add_audit(1.0, "t1", "execution.start", "wf", True, {"inputs": ["a"]})
    two = await store.add_audit(2.0, "t2", "workflow.register", "wf", False)
    three = await store.add_audit(3.0, "t1", "execution.cancel", "01X", True)
    assert one < two < three

    other = await harness.reopen()
    entries = await other.list_audit()
    assert [(e.actor, e.action, e.target, e.allowed) for e in entries] == [
        ("t1", "execution.start", "wf", True),
        ("t2", "workflow.register", "wf", False),
        ("t1", "execution.cancel", "01X", True),
    ]
    assert entries[0].detail == {"inputs": ["a"]}
    assert entries[1].detail == {}
    assert [e.seq for e in await other.list_audit(after=one)] == [two, three]
    assert [e.seq for e in await other.list_audit(limit=1)] == [one]
