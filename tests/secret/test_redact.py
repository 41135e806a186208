"""Redaction of secret values, and sealing them in outputs (the stored form)."""

from __future__ import annotations

from typing import Any

import pytest

from sire.errors import ConfigError
from sire.secrets.redact import NO_SECRETS, SEALED, Redactor, is_sealed, shown
from sire.secrets.vault import Vault


def test_every_occurrence_is_masked_the_longest_value_first() -> None:
    redactor = Redactor(["abc", "abcdef", ""])
    assert redactor.text("x abcdef y abc z abcabc") == "x *** y *** z ******"
    assert redactor.values == ("abcdef", "abc")  # an empty value would mask everything


def test_values_with_regex_characters_are_matched_literally() -> None:
    assert Redactor(["a.b*(c"]).text("a.b*(c axb") == "*** axb"


def test_redaction_goes_through_json_like_data_keys_included() -> None:
    data = {"auth": "Bearer tok", "list": ["tok", 1, None, ("x tok",)], "tok": True}
    assert Redactor(["tok"]).redact(data) == {
        "auth": "Bearer ***",
        "list": ["***", 1, None, ("x ***",)],
        "***": True,
    }


def test_without_secrets_nothing_is_walked_or_copied() -> None:
    data: dict[str, Any] = {"a": ["b"]}
    assert NO_SECRETS.redact(data) is data
    assert NO_SECRETS.text("tok") == "tok"
    assert not NO_SECRETS
    assert Redactor(["zzz"]).redact(data) is data  # nothing matched: the same object


def vault(**values: str) -> Vault:
    from sire.secrets.crypto import Cipher

    return Vault(values, Cipher.generate())


def test_sealing_encrypts_each_string_holding_a_secret_and_keeps_its_redacted_text() -> None:
    box = vault(token="s3cr3t")
    output = {"auth": "Bearer s3cr3t", "n": 1, "items": ["plain", "s3cr3t"]}
    sealed = box.seal(output, "E1")
    assert "s3cr3t" not in repr(sealed)
    assert is_sealed(sealed["auth"])
    assert sealed["auth"]["redacted"] == "Bearer ***"
    assert sealed["auth"][SEALED].startswith("v1:")
    assert sealed["n"] == 1
    assert sealed["items"][0] == "plain"
    assert box.unseal(sealed, "E1") == output
    assert shown(sealed) == {"auth": "Bearer ***", "n": 1, "items": ["plain", "***"]}
    assert box.redact(sealed) == shown(sealed)


def test_sealing_returns_the_output_itself_when_no_secret_is_in_it() -> None:
    output = {"a": "plain"}
    assert vault(token="s3cr3t").seal(output, "E1") is output


def test_a_sealed_output_does_not_open_in_another_execution() -> None:
    box = vault(token="s3cr3t")
    sealed = box.seal({"a": "s3cr3t"}, "E1")
    with pytest.raises(ConfigError, match="cannot decrypt a stored output of execution E2"):
        box.unseal(sealed, "E2")


def test_the_cipher_of_a_vault_is_made_only_when_something_is_sealed() -> None:
    made: list[int] = []

    def factory() -> Any:
        from sire.secrets.crypto import Cipher

        made.append(1)
        return Cipher.generate()

    box = Vault({"token": "s3cr3t"}, factory)
    box.seal({"a": "plain"}, "E1")
    assert made == []
    box.seal({"a": "s3cr3t"}, "E1")
    box.seal({"a": "s3cr3t"}, "E1")
    assert made == [1]
