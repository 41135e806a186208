"""Redaction: secret values masked as `***` in anything shown, and sealed values' display form.

A `Redactor` masks every occurrence of any of its values in strings, recursively
through JSON-like data; with no values it is a no-op (`NO_SECRETS`). Stored outputs
hold each string that contained a secret as a sealed value,
`{"$sire.secret": "<ciphertext>", "redacted": "Bearer ***"}` (sire.secrets.vault);
`shown()` turns those into their redacted text without any key, for every reader of
the store. `active()` is the redactor of the run in progress, for edges that show
values the engine hands them unredacted (the debugger shows a step's parameters).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any

MASK = "***"
#: the key of a sealed value: an output string that held a secret, encrypted
SEALED = "$sire.secret"


def is_sealed(value: Any) -> bool:
    """Whether `value` is a sealed string (what `Vault.seal` stores in its place)."""
    return (
        type(value) is dict
        and len(value) == 2
        and isinstance(value.get(SEALED), str)
        and isinstance(value.get("redacted"), str)
    )


def walk(
    value: Any,
    on_str: Callable[[str], Any],
    on_sealed: Callable[[dict[str, str]], Any],
    on_key: Callable[[str], str] | None = None,
) -> Any:
    """`value` with `on_str` applied to every string value, `on_key` to every string key
    and `on_sealed` to every sealed value. Containers nothing changed in come back as
    the same objects, so a caller can tell that nothing matched by identity.
    """
    if isinstance(value, str):
        return on_str(value)
    if isinstance(value, dict):
        if is_sealed(value):
            return on_sealed(value)
        changed = False
        result: dict[Any, Any] = {}
        for key, item in value.items():
            new_key = on_key(key) if on_key is not None and isinstance(key, str) else key
            new_item = walk(item, on_str, on_sealed, on_key)
            changed = changed or new_key is not key or new_item is not item
            result[new_key] = new_item
        return result if changed else value
    if isinstance(value, list | tuple):
        items = [walk(item, on_str, on_sealed, on_key) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return items if isinstance(value, list) else tuple(items)
    return value


def contains_sealed(value: Any) -> bool:
    """Whether a sealed value is anywhere inside `value`."""
    if isinstance(value, dict):
        return is_sealed(value) or any(contains_sealed(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(contains_sealed(item) for item in value)
    return False


def _same(text: str) -> str:
    return text


def _redacted_text(sealed: dict[str, str]) -> str:
    return sealed["redacted"]


def shown(value: Any) -> Any:
    """`value` as it may be shown: every sealed value replaced by its redacted text."""
    return walk(value, _same, _redacted_text)


class Redactor:
    """Masks the given secret values as `***`, the longest first (one inside another)."""

    __slots__ = ("_pattern", "values")

    def __init__(self, values: Iterable[str]) -> None:
        # Empty values would match everywhere; they are not masked.
        self.values = tuple(sorted({v for v in values if v}, key=len, reverse=True))
        self._pattern = re.compile("|".join(map(re.escape, self.values))) if self.values else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, text: str) -> str:
        """`text` with every secret value in it masked."""
        pattern = self._pattern
        return text if pattern is None else pattern.sub(MASK, text)

    def holds(self, text: str) -> bool:
        """Whether `text` contains any secret value."""
        pattern = self._pattern
        return pattern is not None and pattern.search(text) is not None

    def redact(self, value: Any) -> Any:
        """`value` (JSON-like) with secret values masked and sealed values shown redacted.

        Without values it returns `value` itself at once (no walk).
        """
        if self._pattern is None:
            return value
        return walk(value, self.text, _redacted_text, self.text)


#: a redactor with no values: every method returns what it is given, at once
NO_SECRETS = Redactor(())

_active: ContextVar[Redactor] = ContextVar("sire_redactor", default=NO_SECRETS)


def active() -> Redactor:
    """The redactor of the run whose task is asking (`NO_SECRETS` outside a run with secrets)."""
    return _active.get()


def activate(redactor: Redactor) -> Any:
    """Make `redactor` the active one in this task and the tasks it starts; returns a token."""
    return _active.set(redactor)


def deactivate(token: Any) -> None:
    """Undo `activate`."""
    _active.reset(token)
