"""Real `sire` processes: the demo command, exit statuses, and Ctrl-C / SIGTERM (exit 130)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
SIRE = [sys.executable, "-m", "sire"]
BOUND = 30  # seconds any process may take


def test_the_readme_demo_command_runs_the_hello_workflow(tmp_path: Path) -> None:
    done = subprocess.run(
        [*SIRE, "run", str(ROOT / "examples" / "hello.yaml")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=BOUND,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("execution ")
    assert '"greeting": "Hello, world!"' in done.stdout
    assert (tmp_path / "out" / "greeting.txt").read_text() == "Hello, world!\n"


def test_readme_quick_start_names_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("##")[1]
    assert "make demo" in quick_start
    assert "make test" in quick_start
    makefile = (ROOT / "Makefile").read_text()
    assert "demo: $(STAMP)\n\t$(BIN)/sire run examples/hello.yaml" in makefile
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_exits_130_and_says_it_is_resumable(tmp_path: Path, signum: int) -> None:
    workflow = tmp_path / "slow.yaml"
    workflow.write_text(
        textwrap.dedent("""
            id: slow
            steps:
              - {id: first, tool: "sire:local/echo", with: {x: 1}}
              - {id: wait, tool: "sire:local/sleep", with: {seconds: 60}, needs: [first]}
        """)
    )
    process = subprocess.Popen(
        [*SIRE, "run", str(workflow)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:  # the step before the sleep has completed
            lines.append(line)
            if "first" in line and "completed" in line:
                break
        process.send_signal(signum)
        out, err = process.communicate(timeout=BOUND)
    finally:
        process.kill()
    assert process.returncode == 130, (lines, out, err)
    assert "is resumable" in err
    assert "Traceback" not in err
