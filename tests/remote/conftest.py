"""Real MCP servers over real transports for the `mcp:` tests; no mocks.

`sdk_server.py` (the official SDK's low-level server) runs over stdio and Streamable
HTTP, in both protocol eras. Third-party servers are installed once into a cache
directory ($SIRE_TEST_CACHE, else ~/.cache/sire-tests): mcp-server-time and mcp-server-git
from PyPI, each in its own venv, and @modelcontextprotocol/server-everything,
server-filesystem and server-memory from npm, all three by one `npm install`. When they
cannot be installed their tests are skipped with the reason, except under CI=true, where
that fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from sire.dispatch.dispatcher import DispatchContext
from sire.dispatch.remote import RemoteDispatcher
from sire.model.uri import ToolURI
from sire.model.workflow import ServerSpec

SDK_SERVER = Path(__file__).with_name("sdk_server.py")
FAULT_SERVER = Path(__file__).with_name("fault_server.py")
JSONRPC_SERVER = Path(__file__).with_name("jsonrpc_server.py")
MODERN = "2026-07-28"
HANDSHAKE = "2025-11-25"
#: Pinned, so that tool names and behaviour do not move under the tests.
EVERYTHING = "@modelcontextprotocol/server-everything@2026.8.31"
FILESYSTEM = "@modelcontextprotocol/server-filesystem@2026.8.31"
MEMORY = "@modelcontextprotocol/server-memory@2026.8.31"
NPM_PACKAGES = (EVERYTHING, FILESYSTEM, MEMORY)
TIME_SERVER = "mcp-server-time==2026.10.19"
GIT_SERVER = "mcp-server-git==2026.10.19"


def cache_dir() -> Path:
    path = Path(os.environ.get("SIRE_TEST_CACHE") or Path.home() / ".cache" / "sire-tests")
    path.mkdir(parents=True, exist_ok=True)
    return path


def unavailable(reason: str) -> Any:
    """Skip, or fail under CI, where every server must run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: third-party MCP servers must run in CI)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class HttpServer(NamedTuple):
    url: str
    port: int
    process: subprocess.Popen[bytes]


@contextmanager
def http_server(
    argv: list[str], port: int, log: Path, env: dict[str, str] | None = None
) -> Iterator[HttpServer]:
    """Run `argv` (a server listening on `port`) until the block ends; wait until it listens."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{argv} exited with {process.returncode}: {log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{argv} did not listen on {port}") from None
                time.sleep(0.05)
        yield HttpServer(f"http://127.0.0.1:{port}/mcp", port, process)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def sdk_http_argv(port: int, era: str) -> list[str]:
    argv = [sys.executable, str(SDK_SERVER), "http", str(port)]
    return [*argv, "--legacy"] if era == HANDSHAKE else argv


def sdk_stdio(era: str) -> ServerSpec:
    argv = (sys.executable, str(SDK_SERVER), "stdio")
    return ServerSpec(command=(*argv, "--legacy") if era == HANDSHAKE else argv)


def fault_http_argv(port: int, era: str) -> list[str]:
    """The misbehaving server (`fault_server.py`) over Streamable HTTP on `port`."""
    argv = [sys.executable, str(FAULT_SERVER), "http", str(port)]
    return [*argv, "--legacy"] if era == HANDSHAKE else argv


def fault_stdio(era: str) -> ServerSpec:
    """The misbehaving server (`fault_server.py`) over stdio."""
    argv = (sys.executable, str(FAULT_SERVER), "stdio")
    return ServerSpec(command=(*argv, "--legacy") if era == HANDSHAKE else argv)


@pytest.fixture(scope="session")
def sdk_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, HttpServer]]:
    """The SDK test server over Streamable HTTP, one process per protocol era."""
    logs = tmp_path_factory.mktemp("sdk-http")
    with (
        http_server(
            sdk_http_argv(port := free_port(), MODERN), port, logs / "modern.log"
        ) as modern,
        http_server(
            sdk_http_argv(port := free_port(), HANDSHAKE), port, logs / "handshake.log"
        ) as handshake,
    ):
        yield {MODERN: modern, HANDSHAKE: handshake}


@pytest.fixture(scope="session")
def fault_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, HttpServer]]:
    """The misbehaving server over Streamable HTTP, one process per protocol era."""
    logs = tmp_path_factory.mktemp("fault-http")
    with (
        http_server(
            fault_http_argv(port := free_port(), MODERN), port, logs / "modern.log"
        ) as modern,
        http_server(
            fault_http_argv(port := free_port(), HANDSHAKE), port, logs / "handshake.log"
        ) as handshake,
    ):
        yield {MODERN: modern, HANDSHAKE: handshake}


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of the test JSON-RPC service (jsonrpc_server.py), one process for the session."""
    port = free_port()
    log = tmp_path_factory.mktemp("jsonrpc") / "server.log"
    with http_server([sys.executable, str(JSONRPC_SERVER), str(port)], port, log):
        yield f"http://127.0.0.1:{port}/rpc"


class Target(NamedTuple):
    """A server to call: its spec (under the name `sdk`), transport and protocol era."""

    spec: ServerSpec
    transport: str
    era: str


@pytest.fixture(params=["stdio", "http"])
def sdk(request: pytest.FixtureRequest) -> Target:
    """The SDK test server, in the 2026-07-28 era, over each transport."""
    return _target(request, request.param, MODERN)


@pytest.fixture(
    params=[("stdio", MODERN), ("stdio", HANDSHAKE), ("http", MODERN), ("http", HANDSHAKE)],
    ids=["stdio-2026", "stdio-2025", "http-2026", "http-2025"],
)
def sdk_any_era(request: pytest.FixtureRequest) -> Target:
    """The SDK test server over each transport, in each protocol era."""
    transport, era = request.param
    return _target(request, transport, era)


def _target(request: pytest.FixtureRequest, transport: str, era: str) -> Target:
    if transport == "stdio":
        return Target(sdk_stdio(era), transport, era)
    servers: dict[str, HttpServer] = request.getfixturevalue("sdk_http")
    return Target(ServerSpec(url=servers[era].url), transport, era)


@pytest.fixture
async def remote() -> AsyncIterator[RemoteDispatcher]:
    dispatcher = RemoteDispatcher()
    yield dispatcher
    await dispatcher.aclose()


def context(servers: dict[str, ServerSpec] | None = None, **fields: Any) -> DispatchContext:
    """A context for one call, with the workflow's named servers."""
    fields.setdefault("idempotency_key", "exec-1/step")
    return DispatchContext(execution_id="exec-1", step_id="step", servers=servers or {}, **fields)


async def call(
    remote: RemoteDispatcher,
    spec: ServerSpec,
    tool: str,
    params: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Call `tool` on `spec`, named `sdk` in the workflow's servers; bounded at 60 s."""
    async with asyncio.timeout(60):
        return await remote.dispatch(
            context({"sdk": spec}, **fields), ToolURI.parse(f"mcp:sdk#{tool}"), params or {}
        )


async def server_saw_cancellation(
    remote: RemoteDispatcher, spec: ServerSpec, token: str, within: float = 15
) -> bool:
    """Whether the server cancelled the `slow` call with `token`, asking until `within` s."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if (await call(remote, spec, "cancelled", {"token": token}))["cancelled"]:
            return True
        await asyncio.sleep(0.05)
    return False


# Third-party servers -------------------------------------------------------------------


@pytest.fixture(scope="session")
def mcp_server_time() -> ServerSpec:
    """mcp-server-time from PyPI, in its own venv under the cache directory, over stdio."""
    return ServerSpec(command=(str(pip_server(TIME_SERVER, "mcp-server-time")),))


@pytest.fixture(scope="session")
def mcp_server_git() -> Path:
    """The mcp-server-git executable from PyPI, in its own venv; it needs `git` too."""
    if shutil.which("git") is None:
        unavailable("git is needed for mcp-server-git")
    return pip_server(GIT_SERVER, "mcp-server-git")


def pip_server(requirement: str, executable: str) -> Path:
    """`executable` of `requirement` (`name==version`), installed in a venv of its own."""
    venv = cache_dir() / ("venv-" + requirement.replace("==", "-"))
    exe = venv / "bin" / executable
    if not exe.exists():
        shutil.rmtree(venv, ignore_errors=True)
        made = subprocess.run(
            [sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, timeout=300
        )
        if made.returncode != 0:
            unavailable(f"cannot create a venv for {requirement}: {made.stderr.strip()}")
        installed = subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", requirement],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if installed.returncode != 0 or not exe.exists():
            shutil.rmtree(venv, ignore_errors=True)
            unavailable(
                f"cannot install {requirement} from PyPI: {installed.stderr.strip()[-500:]}"
            )
    return exe


@pytest.fixture(scope="session")
def npm_servers() -> Path:
    """The npm prefix holding every pinned npm server (`NPM_PACKAGES`), installed at once."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        unavailable("node and npm are needed for the @modelcontextprotocol servers")
    prefix = cache_dir() / "npm"
    if not all(_npm_installed(prefix, spec) for spec in NPM_PACKAGES):
        installed = subprocess.run(
            [
                "npm",
                "install",
                "--no-audit",
                "--no-fund",
                "--save-exact",
                "--prefix",
                str(prefix),
                *NPM_PACKAGES,
            ],
            capture_output=True,
            text=True,
            timeout=900,
        )
        missing = [spec for spec in NPM_PACKAGES if not _npm_installed(prefix, spec)]
        if installed.returncode != 0 or missing:
            unavailable(
                f"cannot install {', '.join(missing or NPM_PACKAGES)} with npm: "
                f"{installed.stderr.strip()[-500:]}"
            )
    return prefix


def _npm_installed(prefix: Path, spec: str) -> bool:
    name, _, wanted = spec.rpartition("@")
    return _npm_version(prefix / "node_modules" / name) == wanted


def _npm_version(package: Path) -> str | None:
    try:
        version: str = json.loads((package / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None
    return version


@pytest.fixture(scope="session")
def server_everything(npm_servers: Path) -> Path:
    """The entry script of @modelcontextprotocol/server-everything, installed with npm."""
    return npm_servers / "node_modules" / ".bin" / "mcp-server-everything"


@pytest.fixture(scope="session")
def server_filesystem(npm_servers: Path) -> Path:
    """The entry script of @modelcontextprotocol/server-filesystem (directories as args)."""
    return npm_servers / "node_modules" / ".bin" / "mcp-server-filesystem"


@pytest.fixture(scope="session")
def server_memory(npm_servers: Path) -> Path:
    """The entry script of @modelcontextprotocol/server-memory ($MEMORY_FILE_PATH)."""
    return npm_servers / "node_modules" / ".bin" / "mcp-server-memory"


@pytest.fixture(scope="session")
def everything_http(
    server_everything: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HttpServer]:
    """server-everything over Streamable HTTP (it serves /mcp on $PORT)."""
    port = free_port()
    log = tmp_path_factory.mktemp("everything") / "server.log"
    argv = ["node", str(server_everything), "streamableHttp"]
    with http_server(argv, port, log, env={"PORT": str(port)}) as server:
        yield server
