"""API tokens and roles: minting, verifying and asking what a token may do.

Shared by `sire server` (every request) and `sire token` (minting, listing,
revoking); imports no web framework. A token reads `sire_<id>_<secret>`: the id
names it in lists and the audit log, and only the SHA-256 of the secret is stored
(the secret is 256 random bits, so a plain hash is as good as a slow one and lets
the store find a token by its hash).

Roles are ranked: `viewer` (inspect) < `operator` (execute, cancel, resume) <
`admin` (define workflows, manage tokens), each granted on one workflow or on all.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable

from sire.errors import InputError, NotFoundError
from sire.storage.base import Grant, Store, Token

ROLES = ("viewer", "operator", "admin")
_RANK = {role: rank for rank, role in enumerate(ROLES, start=1)}
_TOKEN = re.compile(r"sire_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})", re.ASCII)
_WORKFLOW_ID = re.compile(r"[a-z0-9][a-z0-9_.-]*", re.ASCII)


class Denied(Exception):
    """A request is refused: 401 (who are you?) or 403 (not allowed); one sentence."""

    def __init__(self, status: int, message: str, actor: str = "anonymous") -> None:
        super().__init__(message)
        self.status = status
        self.actor = actor


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def mint(
    role: str,
    workflows: Iterable[str] = (),
    *,
    name: str | None = None,
    now: float,
    expires_at: float | None = None,
) -> tuple[Token, str]:
    """A new token granting `role` on `workflows` (all when empty), and its text.

    The text is shown once; the returned record holds only its hash.

    Raises:
        InputError: an unknown role, a malformed workflow id, or an expiry in the past.
    """
    if role not in _RANK:
        raise InputError(f"unknown role '{role}' (expected one of {', '.join(ROLES)})")
    scopes = sorted(set(workflows))
    for workflow_id in scopes:
        if not _WORKFLOW_ID.fullmatch(workflow_id):
            raise InputError(
                f"'{workflow_id}' is not a workflow id (lowercase letters, digits, '_', '.', '-')"
            )
    if expires_at is not None and expires_at <= now:
        raise InputError("a token's expiry must be in the future")
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    grants = tuple(Grant(role, w) for w in scopes) or (Grant(role, None),)
    label = name or f"{role}@{','.join(scopes) or '*'}"
    record = Token(token_id, label, hash_secret(secret), grants, now, expires_at)
    return record, f"sire_{token_id}_{secret}"


def token_status(token: Token, now: float) -> str:
    """`active`, `expired` or `revoked`."""
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    return "active"


async def authenticate(store: Store, bearer: str | None, now: float) -> Token:
    """The live token whose text (`Authorization: Bearer <text>`) is `bearer`.

    Raises:
        Denied: 401, with no token, a malformed or unknown one, or an expired or revoked one.
    """
    if not bearer:
        raise Denied(401, "this request needs an API token (Authorization: Bearer sire_…)")
    match = _TOKEN.fullmatch(bearer)
    if match is None:
        raise Denied(401, "the API token is malformed (expected sire_<id>_<secret>)")
    token_id, secret = match.groups()
    presented = hash_secret(secret)
    try:
        token = await store.find_token(presented)
    except NotFoundError:
        raise Denied(401, "the API token is not valid") from None
    # The lookup was by hash; comparing again in constant time also binds the id.
    if not (hmac.compare_digest(token.token_hash, presented) and token.id == token_id):
        raise Denied(401, "the API token is not valid")
    status = token_status(token, now)
    if status != "active":
        raise Denied(401, f"the API token {token.id} is {status}", actor=token.id)
    return token


def allows(token: Token, role: str, workflow_id: str | None = None) -> bool:
    """Whether `token` holds `role` (or a higher one) on `workflow_id`.

    With `workflow_id` None the role must be granted on all workflows.
    """
    need = _RANK[role]
    return any(
        _RANK.get(g.role, 0) >= need and (g.workflow_id is None or g.workflow_id == workflow_id)
        for g in token.grants
    )


def visible_workflows(token: Token) -> set[str] | None:
    """The workflows `token` may inspect; None when it may inspect all."""
    if allows(token, "viewer"):
        return None
    return {g.workflow_id for g in token.grants if g.workflow_id is not None}


def require(token: Token, role: str, workflow_id: str | None = None) -> None:
    """Raises: Denied: 403 when `token` lacks `role` on `workflow_id`."""
    if not allows(token, role, workflow_id):
        where = "on every workflow" if workflow_id is None else f"on workflow '{workflow_id}'"
        raise Denied(403, f"token {token.id} lacks the {role} role {where}", actor=token.id)
