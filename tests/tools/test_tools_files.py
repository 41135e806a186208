"""file.read and file.write: real files in a temporary workspace, and paths that try to leave it."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from sire.dispatch.dispatcher import DispatchContext
from sire.dispatch.inprocess import InProcessDispatcher
from sire.errors import ToolError, ToolInputError
from sire.model.uri import ToolURI
from sire.tools import ToolSettings, builtin_server

Call = Callable[..., Awaitable[dict[str, Any]]]


async def test_file_write_creates_the_file_and_its_directories(call: Call, workspace: Path) -> None:
    result = await call("file.write", {"path": "out/deep/greeting.txt", "content": "héllo"})

    assert result == {"path": "out/deep/greeting.txt", "bytes": 6}
    assert (workspace / "out/deep/greeting.txt").read_text("utf-8") == "héllo"


async def test_file_write_replaces_an_existing_file(call: Call, workspace: Path) -> None:
    (workspace / "a.txt").write_text("old and long")

    await call("file.write", {"path": "a.txt", "content": "new"})

    assert (workspace / "a.txt").read_text() == "new"


async def test_file_write_appends_when_asked(call: Call, workspace: Path) -> None:
    (workspace / "log.txt").write_text("one\n")

    await call("file.write", {"path": "log.txt", "content": "two\n", "append": True})

    assert (workspace / "log.txt").read_text() == "one\ntwo\n"


async def test_file_write_returns_the_path_normalized(call: Call, workspace: Path) -> None:
    result = await call("file.write", {"path": "./out//x/../y.txt", "content": ""})

    assert result["path"] == "out/y.txt"
    assert (workspace / "out/y.txt").exists()


async def test_file_write_without_make_dirs_refuses_a_missing_directory(call: Call) -> None:
    with pytest.raises(ToolError, match="directory 'missing' does not exist in the workspace"):
        await call("file.write", {"path": "missing/x.txt", "content": "", "make_dirs": False})


async def test_file_write_missing_content_is_an_input_error(call: Call) -> None:
    with pytest.raises(ToolInputError, match="content") as caught:
        await call("file.write", {"path": "x.txt"})

    assert caught.value.tool_uri == "sire:local/file.write"
    assert caught.value.retryable is False


async def test_file_write_unknown_argument_is_an_input_error(call: Call) -> None:
    with pytest.raises(ToolInputError):
        await call("file.write", {"path": "x.txt", "content": "", "mode": "w"})


async def test_file_write_refuses_a_directory(call: Call, workspace: Path) -> None:
    (workspace / "dir").mkdir()

    with pytest.raises(ToolError, match="'dir' is a directory"):
        await call("file.write", {"path": "dir", "content": "x"})


async def test_file_read_returns_content_and_size(call: Call, workspace: Path) -> None:
    (workspace / "notes").mkdir()
    (workspace / "notes/a.txt").write_bytes("héllo\n".encode())

    result = await call("file.read", {"path": "notes/a.txt"})

    assert result == {"path": "notes/a.txt", "content": "héllo\n", "size": 7}


async def test_file_read_decodes_with_the_given_encoding(call: Call, workspace: Path) -> None:
    (workspace / "latin.txt").write_bytes("café".encode("latin-1"))

    result = await call("file.read", {"path": "latin.txt", "encoding": "latin-1"})

    assert result["content"] == "café"


async def test_file_read_of_undecodable_bytes_is_a_tool_error(call: Call, workspace: Path) -> None:
    (workspace / "bin").write_bytes(b"\xff\xfe\x00")

    with pytest.raises(ToolError, match="'bin' is not valid utf-8"):
        await call("file.read", {"path": "bin"})


async def test_file_read_of_a_missing_file_says_so(call: Call) -> None:
    with pytest.raises(ToolError) as caught:
        await call("file.read", {"path": "x.txt"})

    assert str(caught.value) == "file.read: 'x.txt' does not exist in the workspace"


async def test_file_read_refuses_a_file_over_the_read_limit(call: Call, workspace: Path) -> None:
    (workspace / "big.txt").write_text("x" * 101)

    with pytest.raises(ToolError, match="larger than the 100-byte read limit"):
        await call("file.read", {"path": "big.txt"}, ToolSettings(max_read_bytes=100))


async def test_file_read_reads_a_file_exactly_at_the_read_limit(
    call: Call, workspace: Path
) -> None:
    (workspace / "full.txt").write_text("x" * 100)

    result = await call("file.read", {"path": "full.txt"}, ToolSettings(max_read_bytes=100))

    assert result["size"] == 100


async def test_file_read_and_write_round_trip_a_large_file(call: Call) -> None:
    content = "0123456789abcdef" * (1024 * 128)  # 2 MiB: off the event loop

    await call("file.write", {"path": "big.txt", "content": content})
    result = await call("file.read", {"path": "big.txt"})

    assert result["content"] == content


@pytest.mark.parametrize("tool", ["file.read", "file.write"])
@pytest.mark.parametrize("path", ["../outside/x.txt", "..", "a/../../outside/x.txt"])
async def test_file_tools_refuse_paths_that_climb_out(call: Call, tool: str, path: str) -> None:
    with pytest.raises(ToolError, match=f"{tool}: path '.*' leaves the workspace"):
        await call(tool, {"path": path, "content": "x"} if tool == "file.write" else {"path": path})


@pytest.mark.parametrize("tool", ["file.read", "file.write"])
async def test_file_tools_refuse_absolute_paths(call: Call, tool: str, workspace: Path) -> None:
    path = str(workspace / "x.txt")  # absolute, even though it points inside

    with pytest.raises(ToolError, match="is absolute"):
        await call(tool, {"path": path, "content": "x"} if tool == "file.write" else {"path": path})


async def test_file_write_through_a_climbing_path_leaves_nothing_outside(
    call: Call, workspace: Path
) -> None:
    with pytest.raises(ToolError):
        await call("file.write", {"path": "../outside/x.txt", "content": "x"})

    assert list((workspace.parent / "outside").iterdir()) == []


async def test_file_read_refuses_a_symlink_pointing_outside(call: Call, workspace: Path) -> None:
    secret = workspace.parent / "outside" / "secret.txt"
    secret.write_text("secret")
    (workspace / "link.txt").symlink_to(secret)

    with pytest.raises(ToolError, match="leaves the workspace"):
        await call("file.read", {"path": "link.txt"})


async def test_file_read_refuses_a_directory_symlink_pointing_outside(
    call: Call, workspace: Path
) -> None:
    (workspace.parent / "outside" / "secret.txt").write_text("secret")
    (workspace / "linked").symlink_to(workspace.parent / "outside")

    with pytest.raises(ToolError, match="leaves the workspace"):
        await call("file.read", {"path": "linked/secret.txt"})


async def test_file_write_refuses_a_symlink_pointing_outside(call: Call, workspace: Path) -> None:
    target = workspace.parent / "outside" / "target.txt"
    target.write_text("original")
    (workspace / "link.txt").symlink_to(target)

    with pytest.raises(ToolError, match="leaves the workspace"):
        await call("file.write", {"path": "link.txt", "content": "overwritten"})

    assert target.read_text() == "original"


async def test_file_write_refuses_a_dangling_symlink_pointing_outside(
    call: Call, workspace: Path
) -> None:
    target = workspace.parent / "outside" / "new.txt"
    (workspace / "link.txt").symlink_to(target)

    with pytest.raises(ToolError, match="leaves the workspace"):
        await call("file.write", {"path": "link.txt", "content": "x"})

    assert not target.exists()


async def test_file_write_refuses_new_directories_under_a_symlink_pointing_outside(
    call: Call, workspace: Path
) -> None:
    (workspace / "linked").symlink_to(workspace.parent / "outside")

    with pytest.raises(ToolError, match="leaves the workspace"):
        await call("file.write", {"path": "linked/new/x.txt", "content": "x"})

    assert list((workspace.parent / "outside").iterdir()) == []


async def test_file_tools_follow_a_symlink_that_stays_inside(call: Call, workspace: Path) -> None:
    (workspace / "real").mkdir()
    (workspace / "alias").symlink_to(workspace / "real")

    await call("file.write", {"path": "alias/x.txt", "content": "inside"})
    result = await call("file.read", {"path": "alias/x.txt"})

    assert result == {"path": "alias/x.txt", "content": "inside", "size": 6}
    assert (workspace / "real/x.txt").read_text() == "inside"


async def test_file_tools_accept_a_workspace_that_is_itself_a_symlink(
    workspace: Path, tmp_path: Path
) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(workspace)
    ctx = DispatchContext(execution_id="e", step_id="s", workspace=str(alias))
    dispatcher = InProcessDispatcher(builtin_server())

    await dispatcher.dispatch(
        ctx, ToolURI.parse("sire:local/file.write"), {"path": "x.txt", "content": "ok"}
    )

    assert (workspace / "x.txt").read_text() == "ok"


async def test_file_read_refuses_a_named_pipe_without_waiting_for_a_writer(
    call: Call, workspace: Path
) -> None:
    os.mkfifo(workspace / "pipe")

    with pytest.raises(ToolError, match="'pipe' is a special file"):
        await call("file.read", {"path": "pipe"})


async def test_file_write_refuses_a_named_pipe_without_waiting_for_a_reader(
    call: Call, workspace: Path
) -> None:
    os.mkfifo(workspace / "pipe")

    with pytest.raises(ToolError, match="'pipe'"):
        await call("file.write", {"path": "pipe", "content": "x"})


async def test_file_read_refuses_a_directory(call: Call, workspace: Path) -> None:
    (workspace / "dir").mkdir()

    with pytest.raises(ToolError, match="'dir' is a directory"):
        await call("file.read", {"path": "dir"})
