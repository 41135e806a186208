"""`sire server`, `sire token create|list|revoke` and `sire audit`: the HTTP API and its keys.

FastAPI and uvicorn are imported inside `server` only; tokens and the audit log need
just the store and `sire.server.auth`.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from sire.cli.common import DbOption, JsonFlag, VerboseFlag, emit_json, with_store
from sire.config import Config, load_config
from sire.storage.base import AuditEntry, Store, Token

T = TypeVar("T")

token_app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)


def server(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port (0: any free one).")
    ] = 8080,
    agent: Annotated[
        bool, typer.Option("--agent", help="Also drive pending executions in this process.")
    ] = False,
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace", help="Where executions started here keep files [default: here]."
        ),
    ] = None,
    db: DbOption = None,
    as_json: JsonFlag = False,
    verbose: VerboseFlag = False,
) -> None:
    """Serve the HTTP API (tokens, roles, audit) and the dashboard at /ui/ until stopped."""
    import socket

    import uvicorn

    from sire.errors import ConfigError, InputError
    from sire.server.app import create_app

    if workspace is not None and not workspace.is_dir():
        raise InputError(f"--workspace {workspace}: not a directory")
    config = load_config()
    app = create_app(config, db=db, agent=agent, workspace=workspace)
    # Binding here turns a busy port into one clear error, and tells --port 0 its port.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)  # connections wait in the backlog until uvicorn has started
    except OSError as exc:
        sock.close()
        raise ConfigError(f"--host {host} --port {port}: cannot listen ({exc.strerror})") from None
    bound = sock.getsockname()[1]
    where = f"http://{host if family == socket.AF_INET else f'[{host}]'}:{bound}"
    if as_json:
        emit_json({"url": where, "port": bound, "agent": agent})
    else:
        print(f"sire server listening on {where}" + ("  (agent on)" if agent else ""))
        print(f"dashboard at {where}/ui/")
    sys.stdout.flush()
    # Open event streams get 5 s to end on a stop, then are cut (clients reconnect).
    settings = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
    _server_class()(settings).run(sockets=[sock])
    if not as_json:
        print("sire server stopped", file=sys.stderr)


def _server_class() -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        """Stops gracefully on SIGTERM or Ctrl-C and exits 0, as `sire agent` does.

        (uvicorn re-raises the signal after its shutdown, which would end the process
        by that signal instead.)
        """

        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            captured = getattr(self, "_captured_signals", None)
            if isinstance(captured, list):
                captured.clear()

    return Server


def _cli_actor() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (some containers)
        import os

        return f"cli:uid-{os.getuid()}"


def token_document(token: Token, now: float) -> dict[str, Any]:
    from sire.server.auth import token_status

    return {
        "id": token.id,
        "name": token.name,
        "grants": [{"role": g.role, "workflow_id": g.workflow_id} for g in token.grants],
        "status": token_status(token, now),
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "revoked_at": token.revoked_at,
    }


@token_app.command("create")
def token_create(
    role: Annotated[
        str, typer.Option("--role", help="viewer, operator or admin.", show_default=False)
    ],
    workflows: Annotated[
        list[str] | None,
        typer.Option(
            "--workflow",
            metavar="ID",
            help="Grant the role on this workflow only (repeatable) [default: all].",
            show_default=False,
        ),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="A label for lists.")] = None,
    expires: Annotated[
        str | None,
        typer.Option("--expires", metavar="DURATION", help="Expire after this long (30d, 12h)."),
    ] = None,
    db: DbOption = None,
    as_json: JsonFlag = False,
    verbose: VerboseFlag = False,
) -> None:
    """Create an API token; it is printed once, and only its hash is stored."""
    from sire.errors import InputError
    from sire.model.durations import parse_duration
    from sire.server.auth import mint

    now = time.time()
    expires_at = None
    if expires is not None:
        try:
            expires_at = now + parse_duration(expires)
        except ValueError as exc:
            raise InputError(f"--expires: {exc}") from None
    token, text = mint(role, workflows or (), name=name, now=now, expires_at=expires_at)

    async def use(store: Store, config: Config) -> None:
        await store.create_token(token)
        detail = {"role": role, "workflows": sorted(set(workflows or ()))}
        await store.add_audit(now, _cli_actor(), "token.create", f"token/{token.id}", True, detail)

    with_store(db, use)
    if as_json:
        emit_json({**token_document(token, now), "token": text})
        return
    print(text)
    scope = ", ".join(f"'{w}'" for w in sorted(set(workflows or ()))) or "every workflow"
    until = "" if expires_at is None else f", expires {_when(expires_at)}"
    print(
        f"token {token.id} ({token.name}): {role} on {scope}{until}; it is shown only this once",
        file=sys.stderr,
    )


@token_app.command("list")
def token_list(
    db: DbOption = None, as_json: JsonFlag = False, verbose: VerboseFlag = False
) -> None:
    """List API tokens (never their secrets), oldest first."""

    async def use(store: Store, config: Config) -> list[Token]:
        return await store.list_tokens()

    tokens = with_store(db, use)
    now = time.time()
    documents = [token_document(t, now) for t in tokens]
    if as_json:
        emit_json({"tokens": documents})
        return
    for doc in documents:
        grants = ", ".join(f"{g['role']}@{g['workflow_id'] or '*'}" for g in doc["grants"])
        expiry = "" if doc["expires_at"] is None else f"  expires {_when(doc['expires_at'])}"
        print(f"{doc['id']}  {doc['status']:<7}  {grants}  {doc['name']}{expiry}")


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id.", metavar="ID")],
    db: DbOption = None,
    as_json: JsonFlag = False,
    verbose: VerboseFlag = False,
) -> None:
    """Revoke an API token: the server refuses it from then on."""
    from sire.errors import NotFoundError

    async def use(store: Store, config: Config) -> bool:
        now = time.time()
        revoked = await store.revoke_token(token_id, now)
        detail = {"revoked": revoked}
        await store.add_audit(now, _cli_actor(), "token.revoke", f"token/{token_id}", True, detail)
        return revoked

    if not with_store(db, use):
        raise NotFoundError(f"no active API token with id '{token_id}' (see `sire token list`)")
    if as_json:
        emit_json({"id": token_id, "revoked": True})
    else:
        print(f"token {token_id} revoked")


def audit(
    after: Annotated[int, typer.Option("--after", min=0, help="Only entries after this seq.")] = 0,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 1000,
    db: DbOption = None,
    as_json: JsonFlag = False,
    verbose: VerboseFlag = False,
) -> None:
    """Print the audit log: every API call that changed something or was refused."""

    async def use(store: Store, config: Config) -> list[AuditEntry]:
        return await store.list_audit(after=after, limit=limit)

    entries = with_store(db, use)
    if as_json:
        emit_json(
            {"entries": [{**entry._asdict(), "detail": dict(entry.detail)} for entry in entries]}
        )
        return
    for e in entries:
        verdict = "allowed" if e.allowed else "denied "
        detail = json.dumps(dict(e.detail), sort_keys=True, default=str) if e.detail else ""
        print(f"{e.seq:>5}  {_when(e.at)}  {verdict}  {e.actor}  {e.action}  {e.target}  {detail}")


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))
