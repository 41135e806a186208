"""A throwaway PostgreSQL cluster for tests and benchmarks: initdb, pg_ctl, a loopback port.

`find_bin_dir()` looks for initdb and pg_ctl on PATH, then under
/usr/lib/postgresql/*/bin and /usr/local/bin. PostgreSQL refuses to run as root,
so as root the cluster runs as the unprivileged user `sire-pg` (created with
`useradd` if missing) through `runuser`. The data directory lives in a temporary
directory owned by that user; the server listens on 127.0.0.1 on a free port with
trust authentication, and `stop()` removes everything.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

PG_USER = "sire-pg"
_BINARIES = ("initdb", "pg_ctl")


def find_bin_dir() -> Path | None:
    """The directory holding initdb and pg_ctl (the newest version found), or None."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for directory in [*candidates, Path("/usr/local/bin")]:
        if all((directory / name).is_file() for name in _BINARIES):
            return directory
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Cluster:
    """A running PostgreSQL server; `url(db)` names a database in it, `stop()` ends it."""

    def __init__(self, bin_dir: Path, root: Path, port: int, user: str | None) -> None:
        self.bin_dir = bin_dir
        self.root = root
        self.port = port
        self.user = user
        self.data = root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; its URL."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def create_schema(self, database: str = "postgres") -> str:
        """A new empty schema, cheaper than a database (a DROP DATABASE checkpoints);
        the URL of `database` with that schema first on its search_path."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.sql(f'CREATE SCHEMA "{name}"', database)
        return f"{self.url(database)}?options=-csearch_path%3D{name}"

    def drop_schema(self, url: str) -> None:
        database = url.rsplit("/", 1)[1].partition("?")[0]
        name = url.rpartition("%3D")[2]
        self.sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE', database)

    def sql(self, statement: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(statement.encode())

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            _run(self.user, [self.bin_dir / "pg_ctl", "stop", "-D", self.data, "-m", "immediate"])
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster(bin_dir: Path, settings: Mapping[str, str] | None = None) -> Cluster:
    """initdb and start a cluster; `settings` are extra `-c name=value` server options.

    Raises:
        RuntimeError: initdb or pg_ctl failed (their output is in the message).
    """
    user = _ensure_user() if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="sire-pg-"))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    port = free_port()
    cluster = Cluster(bin_dir, root, port, user)
    try:
        _run(
            user,
            [
                bin_dir / "initdb",
                "-D",
                cluster.data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
        )
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(port),
            "unix_socket_directories": str(root),
            "max_connections": "200",
            **(settings or {}),
        }
        flags = " ".join(f"-c {name}={value}" for name, value in options.items())
        _run(
            user,
            [
                bin_dir / "pg_ctl",
                "start",
                "-D",
                cluster.data,
                "-w",
                "-t",
                "60",
                "-l",
                root / "server.log",
                "-o",
                flags,
            ],
        )
    except BaseException:
        log = root / "server.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        cluster.stop()
        if tail:
            raise RuntimeError(f"PostgreSQL did not start:\n{tail}") from None
        raise
    _wait_ready(port)
    return cluster


def _ensure_user() -> str:
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
            check=True,
            capture_output=True,
        )
    return PG_USER


def _run(user: str | None, argv: list[str | Path]) -> None:
    command = [str(a) for a in argv]
    if user is not None:
        command = ["runuser", "-u", user, "--", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd="/")
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")


def _wait_ready(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL is not listening on 127.0.0.1:{port}") from None
            time.sleep(0.05)
