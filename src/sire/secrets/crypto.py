"""Encryption of secrets at rest: the key, and AES-256-GCM over text.

The key is 32 random bytes written as URL-safe base64 (44 characters): taken from
`SIRE_SECRET_KEY` when it is set, else from `$SIRE_HOME/secret.key`, which is created
(mode 0600) the first time a key is needed and refused when others may read it.

A ciphertext is text, `v1:<URL-safe base64 of nonce ‖ ciphertext ‖ tag>`, with a
random 96-bit nonce per encryption. What a ciphertext belongs to (`secret:NAME`, or
an execution's outputs) is its associated data, so a ciphertext moved to another
name or execution does not decrypt. `cryptography` is imported only here, and this
module only when a secret is read or written.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sire.errors import ConfigError

KEY_ENV = "SIRE_SECRET_KEY"
KEY_FILE = "secret.key"
VERSION = "v1"
_NONCE = 12
_KEY_BYTES = 32
_MAKE_KEY = (
    'python -c "import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())"'
)


class Cipher:
    """AES-256-GCM with one key; `source` says where the key came from, for messages."""

    __slots__ = ("_aead", "source")

    def __init__(self, key: bytes, source: str = "the key") -> None:
        if len(key) != _KEY_BYTES:
            raise ValueError(f"a secret key is {_KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)
        self.source = source

    @classmethod
    def generate(cls, source: str = "a key made for this process") -> Cipher:
        """A cipher with a new random key (held in memory only)."""
        return cls(AESGCM.generate_key(bit_length=256), source)

    def encrypt(self, plaintext: str, *, context: str) -> str:
        """`plaintext` encrypted and bound to `context` (e.g. `secret:NAME`)."""
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return f"{VERSION}:{base64.urlsafe_b64encode(nonce + sealed).decode('ascii')}"

    def decrypt(self, token: str, *, context: str, what: str) -> str:
        """The plaintext of `token`, which must have been encrypted for `context`.

        Raises:
            ConfigError: `token` is not a ciphertext of this format, or does not decrypt
                with this key for `context` (another key, altered, or moved), naming `what`.
        """
        version, colon, body = token.partition(":")
        if version != VERSION or not colon:
            raise ConfigError(
                f"cannot decrypt {what}: it is not a Sire ciphertext "
                f"(expected '{VERSION}:' and base64)"
            )
        try:
            raw = base64.urlsafe_b64decode(body.encode("ascii"))
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise ConfigError(f"cannot decrypt {what}: the ciphertext is not base64") from None
        if len(raw) <= _NONCE:
            raise ConfigError(f"cannot decrypt {what}: its ciphertext is truncated")
        try:
            plain = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], context.encode())
        except InvalidTag:
            raise ConfigError(
                f"cannot decrypt {what}: {self.source} is not the key it was stored with "
                "(or the stored value was altered)"
            ) from None
        return plain.decode()


def encrypt_secret(cipher: Cipher, name: str, value: str) -> str:
    """The stored form of secret `name`."""
    return cipher.encrypt(value, context=f"secret:{name}")


def decrypt_secret(cipher: Cipher, name: str, token: str) -> str:
    """The value of secret `name` from its stored form.

    Raises:
        ConfigError: the key is not the one it was stored with, or the value was altered.
    """
    return cipher.decrypt(token, context=f"secret:{name}", what=f"secret '{name}'")


def parse_key(text: str, where: str) -> bytes:
    """The 32 key bytes written in `text` (URL-safe base64; padding optional).

    Raises:
        ConfigError: `text` is not such a key; `where` names where it came from.
    """
    cleaned = text.strip()
    try:
        key = base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != _KEY_BYTES or not cleaned:
        raise ConfigError(
            f"{where} is not a secret key: expected {_KEY_BYTES} random bytes in URL-safe "
            f"base64 (44 characters), as printed by: {_MAKE_KEY}"
        )
    return key


def load_cipher(
    home: Path, environ: Mapping[str, str] | None = None, *, create: bool = True
) -> Cipher:
    """The cipher of `SIRE_SECRET_KEY`, or of `$SIRE_HOME/secret.key` (made if missing).

    With `create` false, a missing key file is an error: reading secrets needs the key
    they were stored with, and a new one could not open them.

    Raises:
        ConfigError: the key is malformed, the key file is readable by group or others,
            or it cannot be read or created (or is missing, without `create`).
    """
    environ = os.environ if environ is None else environ
    text = environ.get(KEY_ENV)
    if text:
        return Cipher(parse_key(text, KEY_ENV), KEY_ENV)
    path = home / KEY_FILE
    key = _read_key_file(path)
    if key is None:
        if not create:
            raise ConfigError(
                f"cannot decrypt the stored secrets: {KEY_ENV} is not set and there is no "
                f"key file {path}; set {KEY_ENV} to the key they were stored with"
            )
        key = _create_key_file(path)
    return Cipher(key, f"the key in {path}")


def _read_key_file(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the secret key ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as file:
        mode = os.fstat(file.fileno()).st_mode
        if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"{path}: the secret key file may be read by others than its owner "
                f"(mode {stat.S_IMODE(mode):04o}); run `chmod 600 {path}`"
            )
        raw = file.read()
    try:
        return parse_key(raw.decode("ascii"), str(path))
    except UnicodeDecodeError:
        return parse_key("", str(path))


def _create_key_file(path: Path) -> bytes:
    """Write a new key; written aside then linked in, so no one reads a half-written file."""
    key = os.urandom(_KEY_BYTES)
    aside = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(base64.urlsafe_b64encode(key) + b"\n")
        os.link(aside, path)
    except FileExistsError:  # another process made it first: use theirs
        existing = _read_key_file(path)
        assert existing is not None
        return existing
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create the secret key ({exc.strerror})") from None
    finally:
        aside.unlink(missing_ok=True)
    return key
