"""Sire with MCP servers it does not control, and examples/mcp-servers.yaml end to end.

Real calls with real results through `RemoteDispatcher`: mcp-server-git (PyPI) on a
temporary repository made with `git`, @modelcontextprotocol/server-filesystem confined
to a temporary directory, @modelcontextprotocol/server-memory with its file in one, and
mcp-server-time converting a time. Then the command line: a tool's progress in the live
step table of `sire run` on a terminal, and the example workflow, run with npx as
written from a directory whose node_modules holds the servers the fixtures installed.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from sire.cli.main import main
from sire.dispatch.remote import RemoteDispatcher
from sire.errors import ToolError
from sire.model.workflow import ServerSpec

from .conftest import NPM_PACKAGES, HttpServer, call

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "mcp-servers.yaml"
BOUND = 60  # seconds a `sire` process may take


# mcp-server-git ------------------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with two commits, a modified file and an untracked one."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "-c", "init.defaultBranch=main", "init", "-q")
    git(path, "config", "user.name", "Ada Lovelace")
    git(path, "config", "user.email", "ada@example.com")
    (path / "README.md").write_text("# Engine\n")
    git(path, "add", "README.md")
    git(path, "commit", "-q", "-m", "Describe the engine")
    (path / "notes.txt").write_text("bernoulli numbers\n")
    git(path, "add", "notes.txt")
    git(path, "commit", "-q", "-m", "Add the notes")
    (path / "README.md").write_text("# Analytical engine\n")
    (path / "draft.txt").write_text("not yet\n")
    return path


def git_server(exe: Path, repo: Path) -> ServerSpec:
    return ServerSpec(command=(str(exe), "--repository", str(repo)))


async def test_mcp_server_git_reads_the_log_and_status_of_a_real_repository(
    remote: RemoteDispatcher, mcp_server_git: Path, repo: Path
) -> None:
    spec = git_server(mcp_server_git, repo)
    log = (await call(remote, spec, "git_log", {"repo_path": str(repo), "max_count": 5}))["text"]
    hashes = git(repo, "log", "--format=%H").split()
    assert len(hashes) == 2
    assert log.index(f"Commit: {hashes[0]}") < log.index(f"Commit: {hashes[1]}")
    assert "Message: Add the notes" in log
    assert "Message: Describe the engine" in log
    assert log.count("Author: Ada Lovelace") == 2
    status = (await call(remote, spec, "git_status", {"repo_path": str(repo)}))["text"]
    assert "On branch main" in status
    assert "modified:   README.md" in status
    assert "draft.txt" in status


async def test_mcp_server_git_commits_what_it_staged(
    remote: RemoteDispatcher, mcp_server_git: Path, repo: Path
) -> None:
    spec = git_server(mcp_server_git, repo)
    staged = await call(remote, spec, "git_add", {"repo_path": str(repo), "files": ["draft.txt"]})
    assert staged["text"] == "Files staged successfully"
    committed = await call(
        remote, spec, "git_commit", {"repo_path": str(repo), "message": "Keep the draft"}
    )
    head = git(repo, "rev-parse", "HEAD")
    assert committed["text"] == f"Changes committed successfully with hash {head}"
    assert git(repo, "log", "-1", "--format=%an|%s") == "Ada Lovelace|Keep the draft"
    assert git(repo, "status", "--porcelain") == "M README.md"


async def test_mcp_server_git_refuses_a_repository_it_was_not_given(
    remote: RemoteDispatcher, mcp_server_git: Path, repo: Path, tmp_path: Path
) -> None:
    spec = git_server(mcp_server_git, repo)
    with pytest.raises(ToolError) as caught:
        await call(remote, spec, "git_status", {"repo_path": str(tmp_path)})
    assert "is outside the allowed repository" in str(caught.value)


# @modelcontextprotocol/server-filesystem ------------------------------------------------


async def test_server_filesystem_writes_reads_and_lists_inside_its_directory_only(
    remote: RemoteDispatcher, server_filesystem: Path, tmp_path: Path
) -> None:
    allowed = tmp_path / "allowed"
    (allowed / "sub").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("keep out")
    spec = ServerSpec(command=("node", str(server_filesystem), str(allowed)))
    note = allowed / "note.txt"
    written = await call(
        remote, spec, "write_file", {"path": str(note), "content": "line one\nline two\n"}
    )
    assert written == {"content": f"Successfully wrote to {note}"}
    assert note.read_text() == "line one\nline two\n"
    read = await call(remote, spec, "read_text_file", {"path": str(note), "head": 1})
    assert read == {"content": "line one"}
    listed = await call(remote, spec, "list_directory", {"path": str(allowed)})
    assert sorted(listed["content"].splitlines()) == ["[DIR] sub", "[FILE] note.txt"]
    for outside in (str(tmp_path / "secret.txt"), str(allowed / ".." / "secret.txt")):
        with pytest.raises(ToolError) as caught:
            await call(remote, spec, "read_text_file", {"path": outside})
        assert "Access denied - path outside allowed directories" in str(caught.value)


# @modelcontextprotocol/server-memory -----------------------------------------------------


async def test_server_memory_keeps_a_knowledge_graph_in_its_file(
    server_memory: Path, tmp_path: Path
) -> None:
    memory = tmp_path / "memory.jsonl"
    spec = ServerSpec(command=("node", str(server_memory)), env={"MEMORY_FILE_PATH": str(memory)})
    ada = {"name": "Ada", "entityType": "person", "observations": ["wrote the first program"]}
    engine = {"name": "Engine", "entityType": "machine", "observations": []}
    relation = {"from": "Ada", "to": "Engine", "relationType": "programmed"}
    remote = RemoteDispatcher()
    try:
        created = await call(remote, spec, "create_entities", {"entities": [ada, engine]})
        assert created == {"entities": [ada, engine]}
        related = await call(remote, spec, "create_relations", {"relations": [relation]})
        assert related == {"relations": [relation]}
        assert await call(remote, spec, "read_graph") == {
            "entities": [ada, engine],
            "relations": [relation],
        }
    finally:
        await remote.aclose()
    stored = [json.loads(line) for line in memory.read_text().splitlines()]
    assert {"type": "entity", **ada} in stored
    assert {"type": "relation", **relation} in stored
    # a new server process reads the graph back from the file
    remote = RemoteDispatcher()
    try:
        found = await call(remote, spec, "search_nodes", {"query": "first program"})
        assert found == {"entities": [ada], "relations": [relation]}
    finally:
        await remote.aclose()


# mcp-server-time -------------------------------------------------------------------------


async def test_mcp_server_time_converts_a_time_between_zones(
    remote: RemoteDispatcher, mcp_server_time: ServerSpec
) -> None:
    out = await call(
        remote,
        mcp_server_time,
        "convert_time",
        {"source_timezone": "Asia/Tokyo", "time": "12:00", "target_timezone": "Asia/Kolkata"},
    )
    # neither zone keeps daylight saving time: the answer is the same on any day
    assert out["source"]["timezone"] == "Asia/Tokyo"
    assert out["source"]["datetime"].endswith("T12:00:00+09:00")
    assert out["target"]["timezone"] == "Asia/Kolkata"
    assert out["target"]["datetime"].endswith("T08:30:00+05:30")
    assert out["time_difference"] == "-3.5h"
    assert out["source"]["is_dst"] is out["target"]["is_dst"] is False


# the command line --------------------------------------------------------------------------


def run_in_terminal(argv: list[str], cwd: Path) -> tuple[int, str]:
    """Run `argv` with a pseudo-terminal as stdout and stderr; its status and all it wrote."""
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(
        argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env
    )
    os.close(follower)
    written = bytearray()
    deadline = time.monotonic() + BOUND
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if not ready:
                continue
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                break
            if not data:
                break
            written += data
        status = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
        os.close(leader)
    return status, written.decode(errors="replace")


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_sire_run_on_a_terminal_shows_a_tools_progress_in_its_step_row(
    transport: str, server_everything: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if transport == "stdio":
        server = f'command: [node, "{server_everything}", stdio]'
    else:
        http: HttpServer = request.getfixturevalue("everything_http")
        server = f"url: {http.url}"
    workflow = tmp_path / "progress.yaml"
    workflow.write_text(
        textwrap.dedent(f"""
            id: progress
            servers:
              everything: {{{server}}}
            steps:
              - id: long
                tool: mcp:everything#trigger-long-running-operation
                with: {{duration: 2, steps: 4}}
        """)
    )
    status, screen = run_in_terminal([sys.executable, "-m", "sire", "run", str(workflow)], tmp_path)
    assert status == 0, screen
    assert "Long running operation completed" in screen
    shown = [f"{step}/4" for step in (1, 2, 3) if f"{step}/4" in screen]
    assert shown, f"no progress in the step table: {screen!r}"


def test_the_mcp_servers_example_runs_end_to_end(
    npm_servers: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = EXAMPLE.read_text()
    for package in NPM_PACKAGES:  # the example runs the versions the fixtures installed
        assert package in text
    here, workspace = tmp_path / "here", tmp_path / "workspace"
    here.mkdir()
    workspace.mkdir()
    # As in a project that depends on the servers: npx runs the installed package of the
    # asked version without asking the registry, so this runs offline too.
    (here / "node_modules").symlink_to(npm_servers / "node_modules")
    monkeypatch.chdir(here)  # where the servers start
    argv = ["run", str(EXAMPLE), "-i", "topic=durability", "--workspace", str(workspace)]
    code = main([*argv, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    doc = json.loads(captured.out)
    assert doc["status"] == "completed", doc["error"]
    assert doc["outputs"] == {
        "note": "Sire keeps durability simple.",
        "remembered": ["Sire keeps durability simple."],
        "files": "[FILE] index.md\n[FILE] memory.jsonl\n[DIR] notes",
        "echo": "Echo: durability noted; Long running operation completed. "
        "Duration: 2 seconds, Steps: 4.",
    }
    out = workspace / "out"
    assert (out / "notes" / "durability.md").read_text() == "Sire keeps durability simple."
    assert (out / "index.md").read_text() == "durability: Sire keeps durability simple."
    graph = [json.loads(line) for line in (out / "memory.jsonl").read_text().splitlines()]
    assert graph == [
        {
            "type": "entity",
            "name": "durability",
            "entityType": "topic",
            "observations": ["Sire keeps durability simple."],
        }
    ]


def test_the_meeting_times_example_answers_live_as_its_recording_does(
    mcp_server_time: ServerSpec, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The recording its hermetic test replays has the shape the live server gives today."""
    example = EXAMPLE.with_name("meeting-times.yaml")
    recording = yaml.safe_load((EXAMPLE.parent / "recordings" / "meeting-times.yaml").read_text())
    text = example.read_text()
    assert "mcp-server-time==2026.10.19" in text  # the version the fixture installed
    # The fixture's venv stands in for `uvx`, which CI machines need not have.
    live = text.replace("[uvx, mcp-server-time==2026.10.19,", f"[{mcp_server_time.command[0]},")
    workflow = tmp_path / "meeting-times.yaml"
    workflow.write_text(live)
    code = main(["run", str(workflow), "--json", "--workspace", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    conversions = json.loads(captured.out)["outputs"]["conversions"]
    recorded = [call["output"] for call in recording["mcp:time#convert_time"]]
    assert len(conversions) == len(recorded) == 2
    for got, want in zip(conversions, recorded, strict=True):
        assert got.keys() == want.keys()
        assert got["source"].keys() == want["source"].keys()
        assert got["target"]["timezone"] == want["target"]["timezone"]
        assert got["source"]["datetime"][11:16] == "14:00"
