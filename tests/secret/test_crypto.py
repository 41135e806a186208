"""Secrets at rest: AES-256-GCM bound to the secret's name, and the key and its file."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from sire.errors import ConfigError
from sire.secrets.crypto import (
    KEY_FILE,
    Cipher,
    decrypt_secret,
    encrypt_secret,
    load_cipher,
)

KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()
OTHER_KEY = base64.urlsafe_b64encode(bytes(range(1, 33))).decode()


def cipher(key: str = KEY) -> Cipher:
    return load_cipher(Path("/nonexistent"), {"SIRE_SECRET_KEY": key})


def test_a_secret_round_trips_and_its_ciphertext_is_versioned_text() -> None:
    token = encrypt_secret(cipher(), "api_token", "s3cr3t value ✓")
    assert token.startswith("v1:")
    assert "s3cr3t" not in token
    assert decrypt_secret(cipher(), "api_token", token) == "s3cr3t value ✓"


def test_each_encryption_uses_a_fresh_nonce() -> None:
    one = cipher()
    assert encrypt_secret(one, "a", "same") != encrypt_secret(one, "a", "same")


def test_the_wrong_key_is_one_clear_sentence_naming_the_secret_and_the_key() -> None:
    token = encrypt_secret(cipher(), "api_token", "s3cr3t")
    with pytest.raises(ConfigError) as caught:
        decrypt_secret(cipher(OTHER_KEY), "api_token", token)
    message = str(caught.value)
    assert message.startswith(
        "cannot decrypt secret 'api_token': SIRE_SECRET_KEY is not the key it was stored with"
    )
    assert "\n" not in message


def test_a_tampered_ciphertext_does_not_decrypt() -> None:
    token = encrypt_secret(cipher(), "api_token", "s3cr3t")
    raw = bytearray(base64.urlsafe_b64decode(token[3:]))
    raw[-1] ^= 1
    tampered = "v1:" + base64.urlsafe_b64encode(bytes(raw)).decode()
    with pytest.raises(ConfigError, match="cannot decrypt secret 'api_token'"):
        decrypt_secret(cipher(), "api_token", tampered)


def test_a_ciphertext_moved_to_another_name_does_not_decrypt() -> None:
    token = encrypt_secret(cipher(), "api_token", "s3cr3t")
    with pytest.raises(ConfigError, match="cannot decrypt secret 'db_password'"):
        decrypt_secret(cipher(), "db_password", token)


@pytest.mark.parametrize("token", ["s3cr3t", "v2:AAAA", "v1:%%%", "v1:AAAA"])
def test_what_is_not_a_ciphertext_is_refused_clearly(token: str) -> None:
    with pytest.raises(ConfigError, match="cannot decrypt secret 'x': "):
        decrypt_secret(cipher(), "x", token)


@pytest.mark.parametrize("key", ["short", base64.urlsafe_b64encode(b"x" * 16).decode(), "!!!"])
def test_a_malformed_key_in_the_environment_says_what_a_key_looks_like(key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        cipher(key)
    assert str(caught.value).startswith("SIRE_SECRET_KEY is not a secret key: expected 32")


def test_the_key_may_be_given_without_padding() -> None:
    token = encrypt_secret(cipher(), "a", "v")
    assert decrypt_secret(cipher(KEY.rstrip("=")), "a", token) == "v"


def test_without_the_variable_a_key_file_is_made_with_mode_0600_and_reused(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    first = load_cipher(home, {})
    path = home / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(base64.urlsafe_b64decode(path.read_text().strip())) == 32
    token = encrypt_secret(first, "a", "v")
    assert decrypt_secret(load_cipher(home, {}), "a", token) == "v"
    assert [p.name for p in home.iterdir()] == [KEY_FILE]  # nothing left aside


def test_the_variable_wins_over_the_key_file(tmp_path: Path) -> None:
    load_cipher(tmp_path, {})
    token = encrypt_secret(cipher(), "a", "v")
    assert decrypt_secret(load_cipher(tmp_path, {"SIRE_SECRET_KEY": KEY}), "a", token) == "v"
    with pytest.raises(ConfigError, match=f"the key in {tmp_path / KEY_FILE} is not the key"):
        decrypt_secret(load_cipher(tmp_path, {}), "a", token)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_a_key_file_others_may_read_is_refused(tmp_path: Path, mode: int) -> None:
    load_cipher(tmp_path, {})
    os.chmod(tmp_path / KEY_FILE, mode)
    with pytest.raises(ConfigError) as caught:
        load_cipher(tmp_path, {})
    assert str(caught.value) == (
        f"{tmp_path / KEY_FILE}: the secret key file may be read by others than its owner "
        f"(mode {mode:04o}); run `chmod 600 {tmp_path / KEY_FILE}`"
    )


def test_a_malformed_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE
    path.write_text("not a key\n")
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError, match=f"{path} is not a secret key"):
        load_cipher(tmp_path, {})


def test_reading_without_any_key_makes_no_key_file_and_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_cipher(tmp_path, {}, create=False)
    assert str(caught.value) == (
        "cannot decrypt the stored secrets: SIRE_SECRET_KEY is not set and there is no key "
        f"file {tmp_path / KEY_FILE}; set SIRE_SECRET_KEY to the key they were stored with"
    )
    assert not (tmp_path / KEY_FILE).exists()
