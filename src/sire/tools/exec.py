"""`exec`: run a program that config.yaml allows, in the workspace, without a shell."""

from __future__ import annotations

import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypedDict

from sire.dispatch.dispatcher import DispatchContext
from sire.errors import ToolError
from sire.tools.files import confine

if TYPE_CHECKING:
    from asyncio import StreamReader, StreamWriter
    from asyncio.subprocess import Process

    from sire.dispatch.inprocess import InProcessServer
    from sire.tools import ToolSettings


class ExecOutput(TypedDict):
    """How the program ended and what it wrote (decoded as UTF-8)."""

    exit_code: int
    stdout: str
    stderr: str


def executable(program: str, workdir: str, allow: Sequence[str]) -> str:
    """The file to run for `program`, when `allow` lists it by name or path.

    A bare name is looked up on Sire's own PATH (never the child's `env`). A path is
    allowed when listed as given, or when its name is listed and it is the very file
    that name finds on PATH, so `/tmp/x/echo` does not pass for `echo`.

    Raises:
        ToolError: `program` is not allowed, or not found.
    """
    import shutil

    name = os.path.basename(program)
    refused = ToolError(
        f"exec: {program!r} is not allowed; add it to exec.allow in $SIRE_HOME/config.yaml"
    )
    if program not in allow and name not in allow:
        raise refused
    if os.sep not in program:
        found = shutil.which(program)
        if found is None:
            raise ToolError(f"exec: {program!r} was not found on PATH")
        return found
    # As execve does, a relative path is taken from the working directory.
    path = os.path.join(workdir, program)
    if program in allow:
        return path
    found = shutil.which(name)
    if found is None or not _same_file(path, found):
        raise refused
    return path


def working_directory(workspace: str, cwd: str) -> str:
    """The real path of `cwd`, a directory inside `workspace`.

    Raises:
        ToolError: `cwd` leaves the workspace or is not a directory in it.
    """
    _, workdir = confine(workspace, cwd, "exec")
    if not os.path.isdir(workdir):
        raise ToolError(f"exec: working directory {cwd!r} does not exist in the workspace")
    return workdir


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


#: Variables the dynamic loader reads (glibc, macOS): they would load code of the
#: step's choosing into an allowed program, so a step's `env` cannot set them.
_LOADER_PREFIXES = ("LD_", "DYLD_")


def _check_env(env: dict[str, str] | None) -> None:
    for name in env or ():
        if name.upper().startswith(_LOADER_PREFIXES):
            raise ToolError(
                f"exec: env {name!r} is not allowed; dynamic-loader variables (LD_*, DYLD_*) "
                "would change what code the program runs"
            )


def child_environment(env: dict[str, str] | None) -> dict[str, str]:
    """Sire's environment without its own `SIRE_*` settings (secrets), overlaid by `env`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SIRE_")}
    base.update(env or {})
    return base


def exec_tool(settings: ToolSettings) -> Callable[..., Awaitable[ExecOutput]]:
    """The `exec` tool, running only what `settings.exec_allow` lists."""

    async def exec_(
        command: list[str],
        ctx: DispatchContext,
        stdin: str | None = None,
        cwd: str = ".",
        env: dict[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (a tool argument, honoured below)
    ) -> ExecOutput:
        """Run a program without a shell; a nonzero exit code is returned, not an error.

        Args:
            command: the program and its arguments, e.g. ["git", "status"].
            stdin: text written to the program's standard input.
            cwd: the working directory, relative to the workspace.
            env: environment variables to set, over Sire's own (SIRE_* are never passed on).
            timeout: seconds after which the program is killed and the call fails.
        """
        import asyncio

        if not command:
            raise ToolError("exec: `command` is empty; give the program and its arguments")
        if timeout is not None and timeout <= 0:
            raise ToolError(f"exec: timeout {timeout} is not a positive number of seconds")
        _check_env(env)
        workdir = working_directory(ctx.workspace, cwd)
        program = command[0]
        path = executable(program, workdir, settings.exec_allow)
        try:
            proc = await asyncio.create_subprocess_exec(
                *command,
                executable=path,
                stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=workdir,
                env=child_environment(env),
                # Its own process group, so killing it also kills what it started.
                start_new_session=True,
            )
        except OSError as exc:
            raise ToolError(f"exec: cannot run {program!r}: {exc.strerror or exc}") from None
        limit = settings.max_output_bytes
        try:
            async with asyncio.timeout(timeout):
                data = None if stdin is None else stdin.encode()
                out, err = await _communicate(proc, data, limit)
        except TimeoutError:
            raise ToolError(
                f"exec: {program!r} did not finish within {timeout}s and was killed"
            ) from None
        finally:
            if proc.returncode is None:
                _kill(proc)
                await proc.wait()
        if out is None or err is None:
            stream = "stdout" if out is None else "stderr"
            raise ToolError(
                f"exec: {program!r} wrote more than {limit} bytes to {stream} and was killed"
            )
        assert proc.returncode is not None
        return {
            "exit_code": proc.returncode,
            "stdout": out.decode(errors="replace"),
            "stderr": err.decode(errors="replace"),
        }

    return exec_


async def _communicate(
    proc: Process, data: bytes | None, limit: int
) -> tuple[bytes | None, bytes | None]:
    """Feed stdin, drain stdout and stderr and wait; None for a stream over `limit` bytes."""
    import asyncio

    assert proc.stdout is not None
    assert proc.stderr is not None
    async with asyncio.TaskGroup() as tg:
        if data is not None:
            assert proc.stdin is not None
            tg.create_task(_feed(proc.stdin, data), name=f"exec-{proc.pid}-stdin")
        out = tg.create_task(_drain(proc, proc.stdout, limit), name=f"exec-{proc.pid}-stdout")
        err = tg.create_task(_drain(proc, proc.stderr, limit), name=f"exec-{proc.pid}-stderr")
    await proc.wait()
    return out.result(), err.result()


async def _feed(writer: StreamWriter, data: bytes) -> None:
    try:
        writer.write(data)
        await writer.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the program exited without reading all of it; its exit code tells
    finally:
        writer.close()


async def _drain(proc: Process, reader: StreamReader, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while chunk := await reader.read(65536):
        size += len(chunk)
        if size > limit:
            _kill(proc)
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _kill(proc: Process) -> None:
    """SIGKILL the program's process group (the program and its children)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    except AttributeError:  # no process groups (Windows)
        proc.kill()


def register(server: InProcessServer, settings: ToolSettings) -> None:
    """Register `exec` on `server`."""
    server.add_tool(exec_tool(settings), name="exec")
