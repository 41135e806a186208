"""One run's secrets (a `Vault`) and where they come from (a `SecretSource`).

Above: the engine asks its `SecretSource` for a `Vault` once per run, before it
drives it; the vault fills `secrets` in templates, seals outputs before they are
stored and redacts everything else the run shows or stores. Below: the store's
encrypted secrets (`sire.secrets.store.StoreSecrets`, for the CLI, agent and servers)
or a fixed mapping (`FixedSecrets`, for tests and embedding). A run that uses no secrets gets
no vault and pays nothing.

Sealing: in a stored output, each string holding a secret value is replaced by
`{"$sire.secret": "<ciphertext of the whole string>", "redacted": "<it, masked>"}`,
encrypted for that execution (the ciphertext does not decrypt elsewhere). A resumed
run unseals what it reads back, so a dependent receives the real value; a reader of
the store shows the `redacted` text (`sire.secrets.redact.shown`), without the key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from sire.model.execution import Execution
from sire.model.workflow import Workflow
from sire.secrets.redact import SEALED, Redactor, contains_sealed, walk

if TYPE_CHECKING:
    from sire.secrets.crypto import Cipher


class Vault:
    """The secret values a run may read, and how to store and show what holds them."""

    __slots__ = ("_cipher", "redactor", "values")

    def __init__(self, values: Mapping[str, str], cipher: Cipher | Callable[[], Cipher]) -> None:
        """`cipher` seals and unseals outputs; a callable is called once, when first needed."""
        self.values = dict(values)
        self.redactor = Redactor(self.values.values())
        self._cipher = cipher

    def cipher(self) -> Cipher:
        if callable(self._cipher):
            self._cipher = self._cipher()
        return self._cipher

    def redact(self, value: Any) -> Any:
        """`value` with every secret value masked as `***` (keys too)."""
        return self.redactor.redact(value)

    def seal(self, value: Any, execution_id: str) -> Any:
        """`value` as it is stored: each string holding a secret sealed for `execution_id`.

        A mapping key holding a secret is masked, not sealed (a key cannot be sealed).
        Returns `value` itself when no secret is in it.
        """
        redactor = self.redactor
        if not redactor:
            return value
        context = f"output:{execution_id}"

        def seal_text(text: str) -> Any:
            if not redactor.holds(text):
                return text
            return {
                SEALED: self.cipher().encrypt(text, context=context),
                "redacted": redactor.text(text),
            }

        return walk(value, seal_text, _keep, redactor.text)

    def unseal(self, value: Any, execution_id: str) -> Any:
        """`value` as a tool returned it: every sealed string decrypted.

        Raises:
            ConfigError: a sealed string does not decrypt with this key for `execution_id`.
        """

        def open_sealed(sealed: dict[str, str]) -> str:
            return self.cipher().decrypt(
                sealed[SEALED],
                context=f"output:{execution_id}",
                what=f"a stored output of execution {execution_id}",
            )

        return walk(value, _same, open_sealed)


def _keep(sealed: dict[str, str]) -> dict[str, str]:
    return sealed


def _same(text: str) -> str:
    return text


class SecretSource(Protocol):
    """Where a run's secrets come from; asked once per run, before it is driven."""

    async def vault(self, workflow: Workflow, execution: Execution) -> Vault | None:
        """The run's vault; None when it uses no secrets and has nothing sealed.

        Raises:
            ConfigError: the secrets cannot be decrypted (another key; a malformed key).
        """
        ...


class FixedSecrets:
    """A fixed set of secrets; outputs are sealed with a key held by this object only."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = dict(values)
        self._cipher: Cipher | None = None

    def _key(self) -> Cipher:
        if self._cipher is None:
            from sire.secrets.crypto import Cipher

            self._cipher = Cipher.generate()
        return self._cipher

    async def vault(self, workflow: Workflow, execution: Execution) -> Vault | None:
        if not self.values and not holds_sealed(execution):
            return None
        return Vault(self.values, self._key)


def holds_sealed(execution: Execution) -> bool:
    """Whether a stored step output of `execution` holds a sealed string (a resume)."""
    return any(
        state.output is not None and contains_sealed(state.output)
        for state in execution.step_states.values()
    )
