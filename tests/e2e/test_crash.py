"""Crash tests on real processes and a real SQLite file: SIGKILL `sire run` at random moments,
let `sire agent --once` finish the execution, and check the guarantees of DESIGN §4.

Every step appends its own name to a ledger file, so the ledger says how often each
step ran. Bounded: a fixed number of trials with a seeded schedule of kill times.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

TRIALS = int(os.environ.get("SIRE_CRASH_TRIALS", "30"))
LEASE_TTL = 0.6
BOUND = 60


def _append(step: str, needs: str = "") -> str:
    after = f", needs: [{needs}]" if needs else ""
    return (
        f'  - {{id: {step}, tool: "sire:local/file.write",'
        f' with: {{path: ledger.txt, content: "{step}\\n", append: true}}{after}}}'
    )


def _wait(step: str, needs: str, seconds: float = 0.03) -> str:
    sleep = f"with: {{seconds: {seconds}}}"
    return f'  - {{id: {step}, tool: "sire:local/sleep", {sleep}, needs: [{needs}]}}'


LEDGER = "\n".join(
    [
        "id: ledger",
        "steps:",
        _append("s0"),
        _wait("w0", "s0"),
        _append("s1", "w0"),
        _wait("w1", "s1"),
        "  - id: items",
        "    tool: sire:local/file.write",
        "    needs: [w1]",
        '    for_each: "{{ [0, 1, 2, 3, 4, 5] }}"',
        "    max_concurrency: 1",
        '    with: {path: ledger.txt, content: "items/{{ index }}\\n", append: true}',
        _wait("w2", "items"),
        _append("s2", "w2"),
        _append("s3", "w0"),
        _wait("w3", "s3", 0.05),
        _append("s4", "w3, s2"),
        "outputs:",
        '  last: "{{ steps.s4.output.path }}"',
        "  items: \"{{ steps.items.output['items'] | length }}\"",
        "",
    ]
)
LEDGER_STEPS = ["s0", "s1", "s2", "s3", "s4"] + [f"items/{i}" for i in range(6)]


def sire(*args: str, env: dict[str, str], cwd: Path, **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sire", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,  # type: ignore[call-overload]
    )


def completed_keys(db: Path, execution_id: str) -> set[str]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT key FROM steps WHERE execution_id = ? AND status = 'completed'",
            (execution_id,),
        ).fetchall()
    return {key for (key,) in rows}


def integrity(db: Path) -> str:
    with sqlite3.connect(db) as connection:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SIRE_HOME": str(tmp_path / "home"),
        "SIRE_LEASE_TTL": str(LEASE_TTL),
        "PYTHONUNBUFFERED": "1",
    }


def uninterrupted_outputs(tmp_path: Path, env: dict[str, str]) -> dict[str, object]:
    workspace = tmp_path / "reference"
    workspace.mkdir()
    (workspace / "ledger.yaml").write_text(LEDGER)
    process = sire(
        "run", "ledger.yaml", "--json", "--db", f"sqlite:///{workspace}/sire.db", env=env,
        cwd=workspace,
    )  # fmt: skip
    out, err = process.communicate(timeout=BOUND)
    assert process.returncode == 0, err
    outputs: dict[str, object] = json.loads(out)["outputs"]
    assert Counter((workspace / "ledger.txt").read_text().split()) == dict.fromkeys(LEDGER_STEPS, 1)
    return outputs


def test_a_killed_run_is_finished_by_the_agent_without_rerunning_completed_steps(
    tmp_path: Path, env: dict[str, str]
) -> None:
    expected = uninterrupted_outputs(tmp_path, env)
    schedule = random.Random(20261125)
    checked = 0
    for trial in range(TRIALS):
        workspace = tmp_path / f"trial{trial}"
        workspace.mkdir()
        (workspace / "ledger.yaml").write_text(LEDGER)
        db = workspace / "sire.db"
        url = f"sqlite:///{db}"
        process = sire("run", "ledger.yaml", "--db", url, env=env, cwd=workspace)
        assert process.stdout is not None
        first = process.stdout.readline()  # "execution <id>  workflow ledger"
        execution_id = first.split()[1]
        time.sleep(schedule.uniform(0.0, 0.45))
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=BOUND)
        if not db.exists():
            continue
        try:
            before = completed_keys(db, execution_id)
        except sqlite3.OperationalError:
            continue  # killed before the schema was created: nothing was stored
        time.sleep(LEASE_TTL)  # the dead driver's lease runs out
        agent = sire("agent", "--once", "--db", url, env=env, cwd=workspace)
        _, err = agent.communicate(timeout=BOUND)
        assert agent.returncode == 0, err
        show = sire(
            "execution", "show", execution_id, "--json", "--db", url, env=env, cwd=workspace
        )
        out, err = show.communicate(timeout=BOUND)
        if show.returncode == 2 and "no execution" in err:
            continue  # killed before the execution was stored
        assert show.returncode == 0, err
        document = json.loads(out)
        assert document["status"] == "completed", (trial, document["error"])
        assert document["outputs"] == expected
        ran = Counter((workspace / "ledger.txt").read_text().split())
        for step in LEDGER_STEPS:
            assert ran[step] >= 1, (trial, step)
            if step in before:
                assert ran[step] == 1, (trial, step, "completed before the kill, ran again")
        assert integrity(db) == "ok"
        checked += 1
    assert checked >= TRIALS * 2 // 3, f"only {checked} of {TRIALS} trials reached the store"


def test_two_agents_racing_never_run_a_step_twice(tmp_path: Path, env: dict[str, str]) -> None:
    # They race to claim; none dies. A lease long enough that no stall of a loaded
    # machine lets one expire (then a takeover would rerun a step, at least once).
    env = {**env, "SIRE_LEASE_TTL": "30s"}
    (tmp_path / "ledger.yaml").write_text(LEDGER)
    url = f"sqlite:///{tmp_path / 'sire.db'}"
    ids = []
    for n in range(6):
        workspace = tmp_path / f"w{n}"
        workspace.mkdir()
        created = subprocess.run(
            [sys.executable, "-m", "sire", "run", str(tmp_path / "ledger.yaml"), "--detach",
             "--json", "--db", url, "--workspace", str(workspace)],
            env=env, capture_output=True, text=True, timeout=BOUND,
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        ids.append((json.loads(created.stdout)["execution_id"], workspace))
    agents = [
        sire("agent", "--once", "--concurrency", "3", "--db", url, env=env, cwd=tmp_path)
        for _ in range(2)
    ]
    for agent in agents:
        _, err = agent.communicate(timeout=BOUND)
        assert agent.returncode == 0, err
    for execution_id, workspace in ids:
        ran = Counter((workspace / "ledger.txt").read_text().split())
        assert ran == dict.fromkeys(LEDGER_STEPS, 1), execution_id
        assert completed_keys(tmp_path / "sire.db", execution_id) >= set(LEDGER_STEPS)


def test_an_agent_killed_mid_execution_is_taken_over_by_another(
    tmp_path: Path, env: dict[str, str]
) -> None:
    (tmp_path / "ledger.yaml").write_text(LEDGER)
    db = tmp_path / "sire.db"
    url = f"sqlite:///{db}"
    created = subprocess.run(
        [sys.executable, "-m", "sire", "run", "ledger.yaml", "--detach", "--json", "--db", url],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=BOUND,
    )  # fmt: skip
    execution_id = json.loads(created.stdout)["execution_id"]
    first = sire("agent", "--db", url, env=env, cwd=tmp_path)
    deadline = time.monotonic() + BOUND
    while (
        not (tmp_path / "ledger.txt").exists() or "s1" not in (tmp_path / "ledger.txt").read_text()
    ):
        assert time.monotonic() < deadline, "the first agent never got going"
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=BOUND)
    before = completed_keys(db, execution_id)
    time.sleep(LEASE_TTL)
    second = sire("agent", "--once", "--db", url, env=env, cwd=tmp_path)
    _, err = second.communicate(timeout=BOUND)
    assert second.returncode == 0, err
    ran = Counter((tmp_path / "ledger.txt").read_text().split())
    for step in LEDGER_STEPS:
        assert ran[step] >= 1
        if step in before:
            assert ran[step] == 1, step
    assert completed_keys(db, execution_id) >= set(LEDGER_STEPS)
    assert integrity(db) == "ok"


def test_sigterm_stops_an_agent_cleanly_and_releases_its_leases(
    tmp_path: Path, env: dict[str, str]
) -> None:
    (tmp_path / "slow.yaml").write_text(
        'id: slow\nsteps:\n  - {id: nap, tool: "sire:local/sleep", with: {seconds: 60}}\n'
    )
    db = tmp_path / "sire.db"
    url = f"sqlite:///{db}"
    created = subprocess.run(
        [sys.executable, "-m", "sire", "run", "slow.yaml", "--detach", "--json", "--db", url],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=BOUND,
    )  # fmt: skip
    execution_id = json.loads(created.stdout)["execution_id"]
    agent = sire("agent", "--db", url, env={**env, "SIRE_LEASE_TTL": "30"}, cwd=tmp_path)
    deadline = time.monotonic() + BOUND
    while True:  # wait until the step is running
        with sqlite3.connect(db) as connection:
            row = connection.execute(
                "SELECT status FROM steps WHERE execution_id = ? AND key = 'nap'", (execution_id,)
            ).fetchone()
        if row is not None and row[0] == "running":
            break
        assert time.monotonic() < deadline, "the agent never started the step"
        time.sleep(0.02)
    agent.send_signal(signal.SIGTERM)
    stopping = time.monotonic()
    _, err = agent.communicate(timeout=BOUND)
    print(f"agent stopped {time.monotonic() - stopping:.2f}s after SIGTERM")
    assert agent.returncode == 0, err
    with sqlite3.connect(db) as connection:
        status, owner = connection.execute(
            "SELECT status, lease_owner FROM executions WHERE id = ?", (execution_id,)
        ).fetchone()
        step = connection.execute(
            "SELECT status FROM steps WHERE execution_id = ? AND key = 'nap'", (execution_id,)
        ).fetchone()[0]
    assert (status, owner, step) == ("running", None, "pending")
