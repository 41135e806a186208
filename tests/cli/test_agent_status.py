"""`sire agent status`: the leader and the members of the agents on one store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BOUND = 20.0
SIRE = [sys.executable, "-m", "sire"]


def test_status_shows_a_running_agent_as_leader_and_nothing_once_it_stopped(
    sire: Any, sire_home: Path
) -> None:
    before = sire("agent", "status", "--json")
    assert before.code == 0, before.err
    assert before.json() == {"leader": None, "members": []}

    agent = subprocess.Popen(
        [*SIRE, "agent"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SIRE_HOME": str(sire_home)},
    )
    try:
        deadline = time.monotonic() + BOUND
        while True:
            status = sire("agent", "status", "--json")
            assert status.code == 0, status.err
            document = status.json()
            if document["leader"] is not None and document["members"]:
                break
            assert agent.poll() is None, agent.communicate()
            assert time.monotonic() < deadline, document
            time.sleep(0.05)
        leader = document["leader"]
        assert leader["term"] == 1
        assert leader["live"] is True
        (member,) = document["members"]
        assert member["owner"] == leader["owner"]
        assert member["leader"] is True
        assert member["info"]["pid"] == agent.pid

        text = sire("agent", "status")
        assert text.code == 0, text.err
        lines = text.out.splitlines()
        assert lines[0].startswith(f"leader: {leader['owner']} (term 1, lease ")
        assert lines[1] == "members: 1"
        assert lines[2].startswith(f"* {leader['owner']}  seen ")
        assert f"pid={agent.pid}" in lines[2]
    finally:
        agent.send_signal(signal.SIGTERM)
        out, err = agent.communicate(timeout=BOUND)
    assert agent.returncode == 0, err
    assert "agent stopped" in out

    after = sire("agent", "status", "--json")
    assert after.json() == {"leader": None, "members": []}  # released, and left


def test_agent_status_refuses_an_unknown_subcommand(sire: Any) -> None:
    result = sire("agent", "bogus")
    assert result.code == 2
    assert "No such command 'bogus'" in result.err
