"""`sire run --debug` and `sire execution debug`: real processes driven through stdin."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

SIRE = [sys.executable, "-m", "sire"]
BOUND = 30.0  # seconds any process, or any wait for its output, may take

GREET = """
    id: greet
    inputs:
      name: {type: string, default: world}
    steps:
      - id: greet
        tool: sire:local/text.template
        with: {template: "Hello, {{ inputs.name }}!"}
      - id: save
        tool: sire:local/file.write
        with: {path: out/greeting.txt, content: "{{ steps.greet.output.text }}"}
      - id: read
        tool: sire:local/file.read
        with: {path: "{{ steps.save.output.path }}"}
"""

READS = """
    id: reads
    steps:
      - {id: first, tool: "sire:local/echo", with: {n: 1}}
      - {id: read, tool: "sire:local/file.read", with: {path: input.txt}, needs: [first]}
      - {id: shout, tool: "sire:local/echo", with: {got: "{{ steps.read.output.content }}"}}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def sire(
    tmp_path: Path, *args: str, stdin: str = "", db: str | None = None
) -> subprocess.CompletedProcess[str]:
    store = ["--db", db] if db else ["--db", f"sqlite:///{tmp_path / 'sire.db'}"]
    return subprocess.run(
        [*SIRE, *args, *store],
        cwd=tmp_path,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=BOUND,
    )


def execution_id(out: str) -> str:
    found = re.search(r"^execution (\w+)", out, re.MULTILINE)
    assert found, out
    return found.group(1)


def stored(tmp_path: Path, eid: str) -> dict[str, object]:
    done = sire(tmp_path, "execution", "show", eid, "--json")
    assert done.returncode == 0, done.stderr
    document: dict[str, object] = json.loads(done.stdout)
    return document


class Session:
    """A `sire` process talked to line by line: wait for what it prints, then answer."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        db = ["--db", f"sqlite:///{tmp_path / 'sire.db'}"]
        self.process = subprocess.Popen(
            [*SIRE, *args, *db],
            cwd=tmp_path,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.out = ""
        self.err = b""
        self.seen = 0
        self.changed = threading.Condition()
        self.readers = [
            threading.Thread(target=self._read, daemon=True),
            threading.Thread(target=self._read_err, daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        while chunk := self.process.stdout.read1(4096):
            with self.changed:
                self.out += chunk.decode()
                self.changed.notify_all()

    def _read_err(self) -> None:
        assert self.process.stderr is not None
        self.err = self.process.stderr.read()

    def expect(self, pattern: str) -> None:
        """Wait until `pattern` shows up in what was printed since the last match."""
        deadline = time.monotonic() + BOUND
        with self.changed:
            while (found := re.search(pattern, self.out[self.seen :])) is None:
                left = deadline - time.monotonic()
                assert left > 0, f"no {pattern!r} in:\n{self.out}"
                self.changed.wait(left)
            self.seen += found.end()

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{line}\n".encode())
        self.process.stdin.flush()

    def finish(self) -> tuple[int, str, str]:
        """Close its input, wait for it to exit; its status and everything it printed."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            code = self.process.wait(timeout=BOUND)
        finally:
            self.process.kill()
        for reader in self.readers:
            reader.join(BOUND)
        with self.changed:
            return code, self.out, self.err.decode()


def test_stepping_stops_before_each_step_and_inspect_shows_params_inputs_and_outputs(
    tmp_path: Path,
) -> None:
    workflow = write(tmp_path, "greet.yaml", GREET)
    script = "i\ni inputs\ns\ni greet\ni state\ns\nc\n"
    done = sire(
        tmp_path, "workflow", "run", str(workflow), "--debug", "-i", "name=Ada", stdin=script
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "stopped before greet  (sire:local/text.template)" in out
    assert '"template": "Hello, Ada!"' in out
    assert '"name": "Ada"' in out
    greet_output = out.index("sire:debug save> i greet")
    assert '"text": "Hello, Ada!"' in out[greet_output:]
    assert re.search(r"read\s+waiting", out)  # `i state`: not started yet
    assert "stopped before read" in out
    assert out.index("stopped before save") < out.index("stopped before read")
    assert "completed in" in out
    assert (tmp_path / "out" / "greeting.txt").read_text() == "Hello, Ada!"


def test_edited_parameters_change_what_the_step_does(tmp_path: Path) -> None:
    workflow = write(tmp_path, "greet.yaml", GREET)
    script = 'e template=Bye\ns\ne {"path": "out/other.txt", "content": "edited"}\nc\n'
    done = sire(tmp_path, "run", str(workflow), "--debug", stdin=script)
    assert done.returncode == 0, done.stdout + done.stderr
    assert '  params: {"template": "Bye"}' in done.stdout
    assert (tmp_path / "out" / "other.txt").read_text() == "edited"
    assert not (tmp_path / "out" / "greeting.txt").exists()
    assert '"content": "edited"' in done.stdout  # `read` read the edited path


def test_skipping_a_step_skips_its_dependents_and_the_run_completes(tmp_path: Path) -> None:
    workflow = write(tmp_path, "greet.yaml", GREET)
    done = sire(tmp_path, "run", str(workflow), "--debug", stdin="s\nk\n")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"save\s+skipped\s+skipped in the debugger", done.stdout)
    assert re.search(r"read\s+skipped\s+parent 'save' skipped", done.stdout)
    assert "stopped before read" not in done.stdout
    assert not (tmp_path / "out").exists()
    steps = stored(tmp_path, execution_id(done.stdout))["steps"]
    assert isinstance(steps, dict)
    assert steps["save"]["error"] == "skipped in the debugger"


def test_a_failed_step_retried_with_an_edited_parameter_succeeds(tmp_path: Path) -> None:
    workflow = write(tmp_path, "reads.yaml", READS)
    (tmp_path / "other.txt").write_text("from other")
    done = sire(
        tmp_path,
        "run",
        str(workflow),
        "--debug",
        "--break",
        "read",
        stdin=("c\nr\ne path=other.txt\nr\nc\n"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "stopped before first" not in out  # only at the breakpoint
    assert out.count("read failed (attempt") == 2
    assert "sire:debug read> r" in out
    assert '"got": "from other"' in out
    assert re.search(r"read\s+completed\s+attempt 3", out)


def test_a_failure_fixed_outside_the_debugger_is_retried_in_place(tmp_path: Path) -> None:
    workflow = write(tmp_path, "reads.yaml", READS)
    session = Session(tmp_path, "run", str(workflow), "--debug", "--break", "shout")
    session.expect(r"read failed \(attempt 1\): .*input\.txt")
    session.expect(r"sire:debug read> ")
    (tmp_path / "input.txt").write_text("fixed")
    session.send("retry")
    session.expect(r"stopped before shout")
    session.send("c")
    code, out, err = session.finish()
    assert code == 0, out + err
    assert '"got": "fixed"' in out


def test_a_failure_let_stand_fails_the_run(tmp_path: Path) -> None:
    workflow = write(tmp_path, "reads.yaml", READS)
    done = sire(tmp_path, "run", str(workflow), "--debug", "--break", "read", stdin="c\nc\n")
    assert done.returncode == 1, done.stdout + done.stderr
    assert re.search(r"shout\s+skipped\s+parent 'read' failed", done.stdout)
    assert "failed after" in done.stdout


def test_quit_leaves_the_execution_resumable_and_resume_finishes_it(tmp_path: Path) -> None:
    workflow = write(tmp_path, "greet.yaml", GREET)
    done = sire(tmp_path, "run", str(workflow), "--debug", stdin="s\nq\n")
    assert done.returncode == 130, done.stdout + done.stderr
    eid = execution_id(done.stdout)
    assert f"execution {eid} stopped; it is resumable" in done.stderr
    assert "Traceback" not in done.stderr
    before = stored(tmp_path, eid)
    assert before["status"] == "running"
    steps = before["steps"]
    assert isinstance(steps, dict)
    assert list(steps) == ["greet"]

    resumed = sire(tmp_path, "execution", "resume", eid, "--json")
    assert resumed.returncode == 0, resumed.stderr
    after = json.loads(resumed.stdout)
    assert after["status"] == "completed"
    assert after["steps"]["greet"]["finished_at"] == steps["greet"]["finished_at"]
    assert (tmp_path / "out" / "greeting.txt").read_text() == "Hello, world!"


def test_the_end_of_input_quits_like_quit(tmp_path: Path) -> None:
    workflow = write(tmp_path, "greet.yaml", GREET)
    done = sire(tmp_path, "run", str(workflow), "--debug", stdin="")
    assert done.returncode == 130, done.stdout + done.stderr
    assert "end of input: quitting" in done.stdout
    assert stored(tmp_path, execution_id(done.stdout))["status"] == "running"


def test_execution_debug_resumes_a_failed_execution_after_a_fix(tmp_path: Path) -> None:
    broken = write(tmp_path, "reads.yaml", READS)
    failed = sire(tmp_path, "run", str(broken))
    assert failed.returncode == 1, failed.stdout + failed.stderr
    eid = execution_id(failed.stdout)
    fixed = write(tmp_path, "fixed.yaml", READS.replace("input.txt", "fixed.txt"))
    (tmp_path / "fixed.txt").write_text("fixed")

    done = sire(
        tmp_path, "execution", "debug", eid, "--definition", str(fixed), stdin="i state\ns\nc\n"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "stopped before first" not in out  # completed before: not run, not asked
    assert re.search(r"first\s+completed", out)  # `i state` shows it
    assert "stopped before read" in out
    assert "stopped before shout" in out
    assert '"got": "fixed"' in out


def test_a_held_step_starts_nothing_new_while_a_running_step_finishes(tmp_path: Path) -> None:
    workflow = write(
        tmp_path,
        "branches.yaml",
        """
        id: branches
        steps:
          - {id: slow, tool: "sire:local/sleep", with: {seconds: 0.2}}
          - {id: held, tool: "sire:local/echo", with: {x: 1}}
          - {id: after_slow, tool: "sire:local/echo", with: {y: 2}, needs: [slow]}
        """,
    )
    session = Session(tmp_path, "run", str(workflow), "--debug", "--break", "held")
    session.expect(r"stopped before held")
    session.expect(r"slow\s+completed")  # the running branch finishes and is shown ...
    session.send("i state")
    session.expect(r"after_slow\s+waiting")  # ... but its dependent does not start
    session.send("c")
    code, out, err = session.finish()
    assert code == 0, out + err
    dump = out.index("after_slow  waiting")
    assert re.search(r"after_slow\s+running", out[dump:])
    assert not re.search(r"after_slow\s+(running|completed)", out[:dump])


def test_unknown_commands_get_one_line_and_breakpoints_are_checked(tmp_path: Path) -> None:
    workflow = write(tmp_path, "greet.yaml", GREET)
    script = "frobnicate\nh\ne {bad\nb nope\nb read\nc\nc\n"
    done = sire(tmp_path, "run", str(workflow), "--debug", stdin=script)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "unknown command 'frobnicate'; commands: step, continue" in done.stdout
    assert "commands (aliases in brackets):" in done.stdout
    assert "edit: not a JSON object (" in done.stdout
    assert "break: no step 'nope'" in done.stdout
    assert "stopped before read" in done.stdout
    assert "stopped before save" not in done.stdout

    bad = sire(tmp_path, "run", str(workflow), "--debug", "--break", "nope")
    assert bad.returncode == 2
    assert "--break nope: workflow 'greet' has no step 'nope'" in bad.stderr


def test_a_for_each_step_stops_once_showing_its_items(tmp_path: Path) -> None:
    workflow = write(
        tmp_path,
        "fan.yaml",
        """
        id: fan
        steps:
          - {id: fan, tool: "sire:local/echo", for_each: "{{ [1, 2, 3] }}", with: {n: "{{ item }}"}}
        """,
    )
    done = sire(tmp_path, "run", str(workflow), "--debug", stdin="e n=5\ni\nc\n")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "stopped before fan  (sire:local/echo, for_each over 3 items)" in out
    assert "edit: a for_each step's parameters are rendered per item" in out
    assert "  items: [1, 2, 3]" in out
    assert out.count("stopped before") == 1


def test_debugging_an_unknown_execution_exits_2(tmp_path: Path) -> None:
    done = sire(tmp_path, "execution", "debug", "01NOSUCHEXECUTION0000000000")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
