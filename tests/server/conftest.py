"""An in-process API over a real SQLite store, with helpers to mint tokens and read the audit."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient

from sire.config import load_config
from sire.server.app import Api, create_app
from sire.server.auth import mint
from sire.storage.base import AuditEntry, Store

T = TypeVar("T")

HELLO = """\
id: hello
inputs:
  name: {type: string, default: world}
steps:
  - {id: greet, tool: "sire:local/echo", with: {msg: "hi {{ inputs.name }}"}}
"""


class Harness:
    """A running app (lifespan entered) and direct access to its store, on its event loop."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.api: Api = client.app.state.api  # type: ignore[attr-defined]

    @property
    def store(self) -> Store:
        return self.api.store

    def run(self, call: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Await `call(*args)` on the app's own loop (where its store lives)."""
        portal = self.client.portal
        assert portal is not None
        return portal.call(call, *args)

    def token(
        self,
        role: str,
        workflows: tuple[str, ...] = (),
        *,
        expired: bool = False,
        revoked: bool = False,
    ) -> tuple[str, str]:
        """A stored token: (its id, its text)."""
        now = time.time()
        if expired:
            record, text = mint(role, workflows, now=now - 120, expires_at=now - 60)
        else:
            record, text = mint(role, workflows, now=now)
        self.run(self.store.create_token, record)
        if revoked:
            self.run(self.store.revoke_token, record.id, now)
        return record.id, text

    def last_audit(self) -> int:
        entries = self.run(self.store.list_audit)
        return entries[-1].seq if entries else 0

    def audit_after(self, seq: int) -> list[AuditEntry]:
        async def read() -> list[AuditEntry]:
            return await self.store.list_audit(after=seq)

        return self.run(read)


def headers(text: str | None) -> dict[str, str]:
    return {} if text is None else {"Authorization": f"Bearer {text}"}


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """The app with its in-process agent; a short lease makes a cancel seen within 0.2 s."""
    monkeypatch.setenv("SIRE_LEASE_TTL", "600ms")
    app = create_app(
        load_config(),
        db=f"sqlite:///{tmp_path / 'sire.db'}",
        agent=True,
        workspace=tmp_path,
        poll_interval=0.02,
    )
    with TestClient(app) as client:
        yield Harness(client)
