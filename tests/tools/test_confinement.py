"""What the confinement tests beside each tool do not cover: links that climb through the
workspace's parent or a chain, symlink loops, a step's `env` loading code into an allowed
program, URLs that hide their host, and a refusal through the command line, which fails
its step in one sentence and leaves stored executions and the files outside intact."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from sire.errors import ToolError
from sire.tools import ToolSettings

Call = Callable[..., Awaitable[dict[str, Any]]]


def params(tool: str, path: str) -> dict[str, Any]:
    return {"path": path, "content": "x"} if tool == "file.write" else {"path": path}


def untouched(secret: Path) -> bool:
    """The file outside the workspace is as it was, and nothing was added beside it."""
    return secret.read_text() == "secret" and list(secret.parent.iterdir()) == [secret]


@pytest.fixture
def outside(workspace: Path) -> Path:
    secret = workspace.parent / "outside" / "secret.txt"
    secret.write_text("secret")
    return secret


@pytest.mark.parametrize("tool", ["file.read", "file.write"])
@pytest.mark.parametrize(
    ("links", "path"),
    [
        ({"up": ".."}, "up/outside/secret.txt"),  # a link to the workspace's parent
        ({"up": ".."}, "up"),
        ({"a": "b", "b": "../outside/secret.txt"}, "a"),  # a chain of links
        ({"a": "b", "b": "../outside"}, "a/secret.txt"),
        ({"d": "../outside"}, "d/new.txt"),  # a new file in a linked directory
        ({"d": "../outside"}, "d"),
        ({"abs": "/etc/passwd"}, "abs"),  # an absolute target
    ],
)
async def test_file_tools_refuse_links_that_lead_outside(
    call: Call, workspace: Path, outside: Path, tool: str, links: dict[str, str], path: str
) -> None:
    for name, target in links.items():
        (workspace / name).symlink_to(target)

    with pytest.raises(ToolError) as caught:
        await call(tool, params(tool, path))

    assert str(caught.value) == f"{tool}: path {path!r} leaves the workspace (through a link)"
    assert untouched(outside)


@pytest.mark.parametrize("tool", ["file.read", "file.write"])
async def test_file_tools_refuse_a_symlink_loop_in_one_sentence(
    call: Call, workspace: Path, tool: str
) -> None:
    (workspace / "loop1").symlink_to("loop2")
    (workspace / "loop2").symlink_to("loop1")

    with pytest.raises(ToolError) as caught:
        await call(tool, params(tool, "loop1"))

    assert str(caught.value) == f"{tool}: cannot open 'loop1': Too many levels of symbolic links"


@pytest.mark.parametrize("tool", ["file.read", "file.write"])
@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("", "is not a valid path"),
        ("a\0b", "is not a valid path"),
        ("x.txt/../../outside/secret.txt", "leaves the workspace"),
        ("//etc/passwd", "is absolute"),
    ],
)
async def test_file_tools_refuse_malformed_and_climbing_paths(
    call: Call, outside: Path, tool: str, path: str, reason: str
) -> None:
    with pytest.raises(ToolError) as caught:
        await call(tool, params(tool, path))

    assert str(caught.value) == f"{tool}: path {path!r} {reason}" + (
        "; give a path relative to the workspace" if reason == "is absolute" else ""
    )
    assert untouched(outside)


async def test_file_tools_follow_an_absolute_link_that_stays_inside(
    call: Call, workspace: Path
) -> None:
    (workspace / "real.txt").write_text("inside")
    (workspace / "alias.txt").symlink_to(workspace / "real.txt")

    assert (await call("file.read", {"path": "alias.txt"}))["content"] == "inside"


@pytest.mark.parametrize(
    "name", ["LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "DYLD_INSERT_LIBRARIES"]
)
async def test_exec_refuses_env_that_would_load_other_code_into_an_allowed_program(
    call: Call, name: str
) -> None:
    settings = ToolSettings(exec_allow=("echo",))

    with pytest.raises(ToolError) as caught:
        await call("exec", {"command": ["echo", "hi"], "env": {name: "./evil.so"}}, settings)

    assert str(caught.value) == (
        f"exec: env {name!r} is not allowed; dynamic-loader variables (LD_*, DYLD_*) would "
        "change what code the program runs"
    )


async def test_exec_refuses_a_shell_even_when_its_command_is_allowed(call: Call) -> None:
    settings = ToolSettings(exec_allow=("echo",))

    with pytest.raises(ToolError, match=r"^exec: '/bin/sh' is not allowed; add it to exec\.allow"):
        await call("exec", {"command": ["/bin/sh", "-c", "echo hi"]}, settings)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://api.example.com@evil.test/", "evil.test"),  # userinfo, not the host
        ("http://api.example.com:80@evil.test/", "evil.test"),
        ("http://evil.test#@api.example.com/", "evil.test"),
        ("http://evil.test?@api.example.com/", "evil.test"),
        ("http://api.example.com.evil.test/", "api.example.com.evil.test"),
        ("http://\u0430pi.example.com/", "\u0430pi.example.com"),  # a Cyrillic 'a'
        ("http://127.0.0.1/", "127.0.0.1"),
        ("http://[::1]/", "::1"),
        ("http://0x7f000001/", "0x7f000001"),
    ],
)
async def test_http_request_refuses_urls_that_hide_another_host(
    call: Call, url: str, host: str
) -> None:
    settings = ToolSettings(http_allow_hosts=("api.example.com",))

    with pytest.raises(ToolError) as caught:
        await call("http.request", {"url": url}, settings)

    assert str(caught.value) == (
        f"http.request: host '{host}' is not allowed; add it to http.allow_hosts in "
        "$SIRE_HOME/config.yaml"
    )


FILE_WORKFLOW = """\
id: confined
steps:
  - id: ok
    tool: sire:local/file.write
    with: {path: ok.txt, content: fine}
  - id: steal
    tool: sire:local/file.read
    with: {path: PATH}
"""


@pytest.mark.parametrize("path", ["../outside/secret.txt", "up/outside/secret.txt", "/etc/passwd"])
def test_a_refused_path_fails_its_step_and_leaves_stored_executions_intact(
    sire: Any, write: Any, tmp_path: Path, path: str
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "up").symlink_to("..")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("secret")
    a = write(FILE_WORKFLOW.replace("PATH", "ok.txt"), "a.yaml")
    earlier = sire("run", str(a), "--workspace", str(workspace), "--json")
    assert earlier.code == 0, earlier.err

    result = sire(
        "run",
        str(write(FILE_WORKFLOW.replace("PATH", json.dumps(path)), "b.yaml")),
        "--workspace",
        str(workspace),
        "--json",
    )

    assert result.code == 1
    doc = result.json()
    error = doc["steps"]["steal"]["error"]
    assert error.startswith(f"file.read: path {path!r} ")
    assert "\n" not in error
    assert "secret" not in result.out.replace("secret.txt", "")
    assert doc["steps"]["ok"]["status"] == "completed"
    shown = sire("execution", "show", earlier.json()["execution_id"], "--json").json()
    assert shown["status"] == "completed"
    assert shown["steps"]["steal"]["output"]["content"] == "fine"
    assert (tmp_path / "outside" / "secret.txt").read_text() == "secret"
