"""`sire secret set|list|rm`: values piped or typed at a hidden prompt, stored encrypted."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

SIRE = [sys.executable, "-m", "sire"]
VALUE = "s3cr3t-Value_42"


def db_bytes(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in home.glob("sire.db*"))


def set_secret(sire: Any, monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> Any:
    monkeypatch.setattr(sys, "stdin", io.StringIO(value))
    return sire("secret", "set", name)


def test_set_reads_a_piped_value_and_stores_it_encrypted(sire_home: Path) -> None:
    done = subprocess.run(
        [*SIRE, "secret", "set", "api_token"],
        input=VALUE + "\n",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "secret api_token set\n", "")
    key = sire_home / "secret.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    rows = sqlite3.connect(sire_home / "sire.db").execute("SELECT name, value FROM secrets")
    [(name, stored)] = list(rows)
    assert name == "api_token"
    assert stored.startswith("v1:")
    assert VALUE.encode() not in db_bytes(sire_home)

    from sire.secrets.crypto import decrypt_secret, load_cipher

    assert decrypt_secret(load_cipher(sire_home), "api_token", stored) == VALUE  # newline dropped


def test_set_prompts_with_a_hidden_prompt_on_a_terminal(sire_home: Path) -> None:
    pid, fd = pty.fork()
    if pid == 0:  # the child: `sire secret set` on a terminal of its own
        os.execv(sys.executable, [*SIRE, "secret", "set", "typed"])
    seen = b""
    deadline = time.monotonic() + 30
    answered = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 1024)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        if not answered and b"(hidden): " in seen:
            os.write(fd, VALUE.encode() + b"\n")
            answered = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, seen
    assert b"value of secret typed (hidden): " in seen
    assert b"secret typed set" in seen
    assert VALUE.encode() not in seen  # not echoed

    from sire.secrets.crypto import decrypt_secret, load_cipher

    stored = sqlite3.connect(sire_home / "sire.db").execute("SELECT value FROM secrets").fetchone()
    assert decrypt_secret(load_cipher(sire_home), "typed", stored[0]) == VALUE


def test_list_shows_names_and_times_never_values(
    sire: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert sire("secret", "list").out == "no secrets (sire secret set NAME stores one)\n"
    assert set_secret(sire, monkeypatch, "b_token", VALUE).out == "secret b_token set\n"
    assert set_secret(sire, monkeypatch, "a_token", "other").code == 0
    assert set_secret(sire, monkeypatch, "a_token", "again").out == "secret a_token updated\n"
    listed = sire("secret", "list")
    assert [line.split()[0] for line in listed.out.splitlines()] == ["a_token", "b_token"]
    as_json = sire("secret", "list", "--json")
    document = as_json.json()
    assert [s["name"] for s in document["secrets"]] == ["a_token", "b_token"]
    assert set(document["secrets"][0]) == {"name", "created_at", "updated_at"}
    for text in (listed.out, as_json.out):
        assert VALUE not in text
        assert "again" not in text
        assert "v1:" not in text


def test_set_json_reports_the_name_only(sire: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(VALUE))
    done = sire("secret", "set", "tok", "--json")
    assert done.json() == {"name": "tok", "updated": False}


def test_rm_removes_and_an_unknown_name_exits_2(sire: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    set_secret(sire, monkeypatch, "tok", VALUE)
    assert sire("secret", "rm", "tok").out == "secret tok removed\n"
    missing = sire("secret", "rm", "tok")
    assert missing.code == 2
    assert missing.err == "sire: error: no secret named 'tok' to remove (secrets: none)\n"
    assert sire("secret", "list", "--json").json() == {"secrets": []}


@pytest.mark.parametrize("name", ["1abc", "a-b", "a.b", "é"])
def test_a_name_templates_cannot_read_exits_2(sire: Any, name: str) -> None:
    done = sire("secret", "rm", name)
    assert done.code == 2
    assert f"secret name {name!r}: use letters, digits and underscores" in done.err


def test_an_empty_value_exits_2(sire: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    done = set_secret(sire, monkeypatch, "tok", "\n")
    assert done.code == 2
    assert "secret tok: the value is empty" in done.err


def test_the_value_is_never_an_argument(sire: Any) -> None:
    done = sire("secret", "set", "tok", VALUE)
    assert done.code == 2


def test_set_refuses_a_key_that_does_not_open_the_stored_secrets(
    sire: Any, monkeypatch: pytest.MonkeyPatch, sire_home: Path
) -> None:
    set_secret(sire, monkeypatch, "first", VALUE)
    (sire_home / "secret.key").unlink()  # the key is lost: a new one would be made
    done = set_secret(sire, monkeypatch, "second", "v")
    assert done.code == 3
    assert done.err.startswith("sire: error: cannot decrypt secret 'first': the key in ")
    assert "secret second was not stored" in done.err
    assert [s["name"] for s in sire("secret", "list", "--json").json()["secrets"]] == ["first"]


def test_a_malformed_key_variable_exits_3(sire: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIRE_SECRET_KEY", "nope")
    done = set_secret(sire, monkeypatch, "tok", VALUE)
    assert done.code == 3
    assert done.err.startswith("sire: error: SIRE_SECRET_KEY is not a secret key")
    assert json.loads(sire("secret", "list", "--json").out) == {"secrets": []}
