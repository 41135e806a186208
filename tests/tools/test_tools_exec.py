"""exec: real subprocesses, the allow-list, the workspace as working directory, and killing."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from sire.errors import ToolError, ToolInputError
from sire.tools import ToolSettings

Call = Callable[..., Awaitable[dict[str, Any]]]
PYTHON = ToolSettings(exec_allow=(sys.executable,))


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def alive(pid: int) -> bool:
    """Whether `pid` is a running process (a zombie, killed but not yet reaped, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def real(path: Path) -> str:
    return os.path.realpath(path)


async def eventually(predicate: Callable[[], bool]) -> None:
    """Wait until `predicate()` holds, for at most 10 seconds, in 10 ms steps."""
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met within 10 s")


async def test_exec_runs_an_allowed_program_and_returns_its_output(call: Call) -> None:
    settings = ToolSettings(exec_allow=("/bin/echo",))

    result = await call("exec", {"command": ["/bin/echo", "hello", "$HOME"]}, settings)

    assert result == {"exit_code": 0, "stdout": "hello $HOME\n", "stderr": ""}


async def test_exec_finds_a_program_allowed_by_name_on_path(call: Call) -> None:
    result = await call("exec", {"command": ["echo", "hi"]}, ToolSettings(exec_allow=("echo",)))

    assert result["stdout"] == "hi\n"


async def test_exec_accepts_the_path_of_a_program_allowed_by_name(call: Call) -> None:
    echo = shutil.which("echo")
    assert echo is not None

    result = await call("exec", {"command": [echo, "hi"]}, ToolSettings(exec_allow=("echo",)))

    assert result["stdout"] == "hi\n"


async def test_exec_is_off_by_default(call: Call) -> None:
    with pytest.raises(ToolError) as caught:
        await call("exec", {"command": ["rm", "-rf", "x"]})

    assert str(caught.value) == (
        "exec: 'rm' is not allowed; add it to exec.allow in $SIRE_HOME/config.yaml"
    )
    assert caught.value.tool_uri == "sire:local/exec"


async def test_exec_refuses_a_program_that_is_not_listed(call: Call) -> None:
    with pytest.raises(ToolError, match="'rm' is not allowed"):
        await call("exec", {"command": ["rm", "x"]}, ToolSettings(exec_allow=("echo",)))


def _fake_echo(directory: Path) -> Path:
    fake = directory / "echo"
    fake.write_text("#!/bin/sh\necho fake\n")
    fake.chmod(0o755)
    return fake


async def test_exec_refuses_another_file_with_an_allowed_name(call: Call, workspace: Path) -> None:
    _fake_echo(workspace)

    with pytest.raises(ToolError, match=r"'\./echo' is not allowed"):
        await call("exec", {"command": ["./echo"]}, ToolSettings(exec_allow=("echo",)))


async def test_exec_looks_up_an_allowed_name_on_sires_path_not_the_childs(
    call: Call, workspace: Path
) -> None:
    _fake_echo(workspace)

    result = await call(
        "exec",
        {"command": ["echo", "real"], "env": {"PATH": str(workspace)}},
        ToolSettings(exec_allow=("echo",)),
    )

    assert result["stdout"] == "real\n"


async def test_exec_returns_a_nonzero_exit_code_instead_of_failing(call: Call) -> None:
    code = "import sys; sys.stderr.write('bad'); sys.exit(3)"

    result = await call("exec", {"command": python(code)}, PYTHON)

    assert result == {"exit_code": 3, "stdout": "", "stderr": "bad"}


async def test_exec_writes_stdin_to_the_program(call: Call) -> None:
    code = "import sys; print(sys.stdin.read().upper(), end='')"

    result = await call("exec", {"command": python(code), "stdin": "shout"}, PYTHON)

    assert result["stdout"] == "SHOUT"


async def test_exec_gives_the_program_an_empty_stdin_by_default(call: Call) -> None:
    code = "import sys; print(repr(sys.stdin.read()))"

    result = await call("exec", {"command": python(code)}, PYTHON)

    assert result["stdout"] == "''\n"


async def test_exec_runs_in_the_workspace_by_default(call: Call, workspace: Path) -> None:
    result = await call("exec", {"command": python("import os; print(os.getcwd())")}, PYTHON)

    assert result["stdout"].strip() == real(workspace)


async def test_exec_runs_in_a_subdirectory_of_the_workspace(call: Call, workspace: Path) -> None:
    (workspace / "sub").mkdir()

    result = await call(
        "exec", {"command": python("import os; print(os.getcwd())"), "cwd": "sub"}, PYTHON
    )

    assert result["stdout"].strip() == real(workspace / "sub")


@pytest.mark.parametrize("cwd", ["..", "../outside", "/tmp"])
async def test_exec_refuses_a_working_directory_outside_the_workspace(call: Call, cwd: str) -> None:
    with pytest.raises(ToolError, match=r"^exec: path '.*' (leaves the workspace|is absolute)"):
        await call("exec", {"command": python("pass"), "cwd": cwd}, PYTHON)


async def test_exec_refuses_a_missing_working_directory(call: Call) -> None:
    with pytest.raises(ToolError, match="working directory 'nope' does not exist"):
        await call("exec", {"command": python("pass"), "cwd": "nope"}, PYTHON)


async def test_exec_sets_env_and_keeps_sires_own_settings_from_the_program(
    call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIRE_SECRET_KEY", "do-not-leak")
    code = "import os; print(os.environ.get('GREETING'), os.environ.get('SIRE_SECRET_KEY'))"

    result = await call("exec", {"command": python(code), "env": {"GREETING": "hi"}}, PYTHON)

    assert result["stdout"] == "hi None\n"


async def test_exec_refuses_an_empty_command(call: Call) -> None:
    with pytest.raises(ToolError, match="`command` is empty"):
        await call("exec", {"command": []}, PYTHON)


async def test_exec_requires_a_list_command(call: Call) -> None:
    with pytest.raises(ToolInputError, match="command"):
        await call("exec", {"command": "echo hi"}, PYTHON)


async def test_exec_reports_a_program_that_cannot_start(call: Call, workspace: Path) -> None:
    (workspace / "script").write_text("not executable")
    settings = ToolSettings(exec_allow=("./script",))

    with pytest.raises(ToolError, match=r"cannot run '\./script'"):
        await call("exec", {"command": ["./script"]}, settings)


async def test_exec_kills_a_program_that_writes_more_than_the_output_limit(call: Call) -> None:
    code = "import sys, time; sys.stdout.write('x' * 1000); sys.stdout.flush(); time.sleep(60)"
    settings = ToolSettings(exec_allow=(sys.executable,), max_output_bytes=100)

    with pytest.raises(ToolError, match="more than 100 bytes to stdout and was killed"):
        await call("exec", {"command": python(code)}, settings)


PID_WRITER = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
with open("pids.tmp", "w") as f:
    f.write(f"{os.getpid()} {child.pid}")
os.rename("pids.tmp", "pids")
time.sleep(60)
"""


async def test_exec_timeout_kills_the_program_and_fails(call: Call) -> None:
    # The call returns only once the program has been killed and reaped.
    with pytest.raises(ToolError, match=r"did not finish within 0\.05s and was killed"):
        await call(
            "exec", {"command": python("import time; time.sleep(60)"), "timeout": 0.05}, PYTHON
        )


async def test_exec_cancellation_kills_the_program_and_its_children(
    call: Call, workspace: Path
) -> None:
    task = asyncio.create_task(call("exec", {"command": python(PID_WRITER)}, PYTHON))
    await eventually(lambda: (workspace / "pids").exists())
    pids = [int(p) for p in (workspace / "pids").read_text().split()]
    assert all(alive(pid) for pid in pids)

    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert not alive(pids[0])  # the program itself is reaped before the call returns
    await eventually(lambda: not alive(pids[1]))
