"""The secrets of the store, as a `SecretSource`: what the CLI, the agent and servers use.

On every run's path, so it imports nothing until a run turns out to need secrets.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sire.model.execution import Execution
    from sire.model.workflow import Workflow
    from sire.secrets.vault import Vault
    from sire.storage.base import Store


class StoreSecrets:
    """The store's secrets, decrypted for runs whose definition mentions `secrets`.

    The check is on the definition's text (a template, but also a comment or a
    description): cheap, and it never misses a use; a false alarm only costs loading
    the secrets. A run without them never imports `cryptography`.
    """

    def __init__(self, store: Store, home: Path, environ: Mapping[str, str] | None = None) -> None:
        self.store = store
        self.home = home
        self.environ = environ

    async def vault(self, workflow: Workflow, execution: Execution) -> Vault | None:
        """The run's vault, with every stored secret decrypted; None if it needs none.

        Raises:
            ConfigError: the key is malformed or is not the one the secrets were stored with.
        """
        sealed = False
        if execution.step_states:  # a resume: outputs stored sealed need the key
            from sire.secrets.vault import holds_sealed

            sealed = holds_sealed(execution)
        if not sealed and workflow.text and "secrets" not in workflow.text:
            return None
        stored = await self.store.get_secrets()
        if not stored and not sealed:
            return None
        from sire.secrets.crypto import decrypt_secret, load_cipher
        from sire.secrets.vault import Vault

        cipher = load_cipher(self.home, self.environ, create=False)
        values = {name: decrypt_secret(cipher, name, token) for name, token in stored.items()}
        return Vault(values, cipher)
