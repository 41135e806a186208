"""`sire secret set|list|rm NAME`: the store's secrets, encrypted at rest, values never shown.

A value is read from stdin when it is piped, else typed at a hidden prompt; never
taken as an argument (it would land in shell history and `ps`).
"""

from __future__ import annotations

import re
import sys
import time
from typing import Annotated, Any, TypeVar

import typer

from sire.cli.common import DbOption, JsonFlag, VerboseFlag, emit_json, with_store
from sire.config import Config
from sire.errors import ConfigError, InputError, NotFoundError
from sire.storage.base import Store

secret_app = typer.Typer(
    help="Credentials for templates ({{ secrets.NAME }}): stored encrypted, never shown.",
    no_args_is_help=True,
)

NameArgument = Annotated[
    str, typer.Argument(help="The secret's name (templates read secrets.NAME).", metavar="NAME")
]
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
T = TypeVar("T")


def check_name(name: str) -> None:
    """Raises: InputError: `name` cannot be read as `secrets.NAME` in a template."""
    if not _NAME.fullmatch(name):
        raise InputError(
            f"secret name {name!r}: use letters, digits and underscores, not starting with "
            "a digit, so templates can read it as secrets.NAME"
        )


def read_value(name: str) -> str:
    """The value of secret `name`: stdin when piped (one final newline dropped), else a prompt.

    Raises:
        InputError: the value is empty, or the prompt was closed.
    """
    stdin = sys.stdin
    if stdin is not None and not stdin.isatty():
        value = stdin.read()
        value = value[:-1] if value.endswith("\n") else value
        value = value[:-1] if value.endswith("\r") else value
    else:
        import getpass

        try:
            value = getpass.getpass(f"value of secret {name} (hidden): ")
        except EOFError:
            value = ""
    if not value:
        raise InputError(
            f"secret {name}: the value is empty; pipe it on stdin or type it at the prompt"
        )
    return value


@secret_app.command("set")
def set_secret(
    name: NameArgument,
    db: DbOption = None,
    as_json: JsonFlag = False,
    verbose: VerboseFlag = False,
) -> None:
    """Store a secret, encrypted: the value comes from stdin when piped, else a hidden prompt."""
    check_name(name)
    value = read_value(name)

    async def use(store: Store, config: Config) -> bool:
        from sire.secrets.crypto import decrypt_secret, encrypt_secret, load_cipher

        cipher = load_cipher(config.home)
        stored = await store.get_secrets()
        # One key for all: refuse to store a secret the others' key would not open.
        other = next((n for n in sorted(stored) if n != name), None)
        if other is not None:
            try:
                decrypt_secret(cipher, other, stored[other])
            except ConfigError as exc:
                raise ConfigError(
                    f"{exc}; secret {name} was not stored (set the key the others were "
                    "stored with, or remove them)"
                ) from None
        await store.put_secret(name, encrypt_secret(cipher, name, value), time.time())
        return name in stored

    updated = with_store(db, use)
    if as_json:
        emit_json({"name": name, "updated": updated})
    else:
        print(f"secret {name} {'updated' if updated else 'set'}")


@secret_app.command("list")
def list_secrets(
    db: DbOption = None,
    as_json: JsonFlag = False,
    verbose: VerboseFlag = False,
) -> None:
    """List the secrets' names, with when each was set (never their values)."""

    async def use(store: Store, config: Config) -> list[dict[str, Any]]:
        return [
            {"name": r.name, "created_at": r.created_at, "updated_at": r.updated_at}
            for r in await store.list_secrets()
        ]

    secrets = with_store(db, use)
    if as_json:
        emit_json({"secrets": secrets})
        return
    if not secrets:
        print("no secrets (sire secret set NAME stores one)")
        return
    width = max(len(s["name"]) for s in secrets)
    for secret in secrets:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(secret["updated_at"]))
        print(f"{secret['name']:<{width}}  updated {when}")


@secret_app.command("rm")
def remove_secret(
    name: NameArgument,
    db: DbOption = None,
    as_json: JsonFlag = False,
    verbose: VerboseFlag = False,
) -> None:
    """Remove a secret."""
    check_name(name)

    async def use(store: Store, config: Config) -> list[str] | None:
        if await store.delete_secret(name):
            return None
        return [r.name for r in await store.list_secrets()]

    left = with_store(db, use)
    if left is not None:
        known = ", ".join(left) or "none"
        raise NotFoundError(f"no secret named '{name}' to remove (secrets: {known})")
    if as_json:
        emit_json({"name": name, "removed": True})
    else:
        print(f"secret {name} removed")
