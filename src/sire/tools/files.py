"""`file.read` and `file.write`, and `confine`: keeping a path inside the workspace."""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypedDict

from sire.dispatch.dispatcher import DispatchContext
from sire.errors import ToolError

if TYPE_CHECKING:
    from sire.dispatch.inprocess import InProcessServer
    from sire.tools import ToolSettings

_NONBLOCK = getattr(os, "O_NONBLOCK", 0)

#: Files up to this size are read and written on the event loop (it takes microseconds).
INLINE_BYTES = 1024 * 1024


class ReadOutput(TypedDict):
    """The file's text."""

    path: str
    content: str
    size: int


class WriteOutput(TypedDict):
    """Where the text went and how many bytes were written."""

    path: str
    bytes: int


def normalize(path: str, tool: str) -> str:
    """`path` normalized, as a relative POSIX path that stays inside the workspace.

    Raises:
        ToolError: `path` is empty, absolute, or climbs out with `..`.
    """
    if not path or "\0" in path:
        raise ToolError(f"{tool}: path {path!r} is not a valid path")
    if os.path.isabs(path):
        raise ToolError(f"{tool}: path {path!r} is absolute; give a path relative to the workspace")
    relative = os.path.normpath(path).replace(os.sep, "/")
    if relative == ".." or relative.startswith("../"):
        raise ToolError(f"{tool}: path {path!r} leaves the workspace")
    return relative


def confine(workspace: str, path: str, tool: str) -> tuple[str, str]:
    """Return `(relative, real)`: `path` normalized, and its real path inside `workspace`.

    Symbolic links are followed, so one pointing outside the workspace is refused;
    the target itself need not exist.

    Raises:
        ToolError: `path` is absolute, or it or a link on its way leaves the workspace.
    """
    relative = normalize(path, tool)
    root = os.path.realpath(workspace)
    real = os.path.realpath(os.path.join(root, relative))
    if not _inside(root, real):
        raise ToolError(f"{tool}: path {path!r} leaves the workspace (through a link)")
    return relative, real


def _ensure_regular(fd: int, relative: str, tool: str) -> None:
    """Close `fd` and refuse it unless it is a regular file (not a directory, pipe or device)."""
    mode = os.fstat(fd).st_mode
    if stat.S_ISREG(mode):
        return
    os.close(fd)
    kind = "a directory" if stat.S_ISDIR(mode) else "a special file"
    raise ToolError(f"{tool}: {relative!r} is {kind}, not a regular file")


def _inside(root: str, real: str) -> bool:
    return real == root or os.path.commonpath([root, real]) == root


def register(server: InProcessServer, settings: ToolSettings) -> None:
    """Register `file.read` and `file.write` on `server`."""
    server.add_tool(read_tool(settings.max_read_bytes), name="file.read")
    server.add_tool(file_write, name="file.write")


def read_tool(max_bytes: int) -> Callable[..., Awaitable[ReadOutput]]:
    """The `file.read` tool, refusing files over `max_bytes`."""

    async def file_read(path: str, ctx: DispatchContext, encoding: str = "utf-8") -> ReadOutput:
        """Read a text file in the workspace.

        Args:
            path: the file, relative to the workspace.
            encoding: the file's text encoding.
        """
        import asyncio

        relative, real = confine(ctx.workspace, path, "file.read")
        try:
            size = os.stat(real).st_size
        except OSError:
            size = 0  # `_read` says what is wrong
        if size <= INLINE_BYTES:
            data = _read(real, relative, max_bytes)
        else:
            data = await asyncio.to_thread(_read, real, relative, max_bytes)
        try:
            content = data.decode(encoding)
        except LookupError:
            raise ToolError(f"file.read: {encoding!r} is not a known encoding") from None
        except UnicodeDecodeError as exc:
            raise ToolError(
                f"file.read: {relative!r} is not valid {encoding} (byte {exc.start})"
            ) from None
        return {"path": relative, "content": content, "size": len(data)}

    return file_read


def _read(real: str, relative: str, max_bytes: int) -> bytes:
    """The bytes of the regular file at `real`.

    Raises:
        ToolError: it does not exist, is not a readable regular file, or is over `max_bytes`.
    """
    try:
        # O_NONBLOCK: opening a named pipe must not wait for a writer.
        fd = os.open(real, os.O_RDONLY | _NONBLOCK)
    except (FileNotFoundError, NotADirectoryError):
        raise ToolError(f"file.read: {relative!r} does not exist in the workspace") from None
    except PermissionError:
        raise ToolError(f"file.read: {relative!r} is not readable") from None
    except OSError as exc:
        raise ToolError(f"file.read: cannot open {relative!r}: {exc.strerror}") from None
    _ensure_regular(fd, relative, "file.read")
    with os.fdopen(fd, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ToolError(f"file.read: {relative!r} is larger than the {max_bytes}-byte read limit")
    return data


async def file_write(
    path: str, content: str, ctx: DispatchContext, append: bool = False, make_dirs: bool = True
) -> WriteOutput:
    """Write text to a file in the workspace (UTF-8), creating or replacing it.

    Args:
        path: the file, relative to the workspace.
        content: the text to write.
        append: add to the end of the file instead of replacing it.
        make_dirs: create missing parent directories.
    """
    import asyncio

    data = content.encode()
    if len(data) <= INLINE_BYTES:
        relative = _write(ctx.workspace, path, data, append, make_dirs)
    else:
        relative = await asyncio.to_thread(_write, ctx.workspace, path, data, append, make_dirs)
    return {"path": relative, "bytes": len(data)}


def _write(workspace: str, path: str, data: bytes, append: bool, make_dirs: bool) -> str:
    relative, real = confine(workspace, path, "file.write")
    parent = os.path.dirname(real)
    if not os.path.isdir(parent):
        if not make_dirs:
            folder = posixpath.dirname(relative)
            raise ToolError(f"file.write: directory {folder!r} does not exist in the workspace")
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            folder = posixpath.dirname(relative)
            raise ToolError(f"file.write: cannot create {folder!r}: {exc.strerror}") from None
        # A link created meanwhile could have moved the target; look again.
        relative, real = confine(workspace, path, "file.write")
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    # O_NOFOLLOW: a link swapped in after `confine` looked is refused, not followed.
    # O_NONBLOCK: opening a named pipe must not wait for a reader.
    flags |= getattr(os, "O_NOFOLLOW", 0) | _NONBLOCK
    try:
        fd = os.open(real, flags, 0o666)
    except IsADirectoryError:
        raise ToolError(f"file.write: {relative!r} is a directory, not a regular file") from None
    except PermissionError:
        raise ToolError(f"file.write: {relative!r} is not writable") from None
    except OSError as exc:
        raise ToolError(f"file.write: cannot open {relative!r}: {exc.strerror}") from None
    _ensure_regular(fd, relative, "file.write")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return relative
