"""Workflow tests: `*.test.yaml` files of inputs, mocks and expectations, and running them.

    workflow: hello.yaml                 # relative to this file
    tests:
      - name: greets by name
        inputs: {name: Ada}
        mocks:                           # a mock file inline (see sire.dispatch.mock),
          save: {output: {path: x}}      # or `mock_file: path`; `mock_only: true`
        expect:
          status: completed              # or failed
          outputs: {greeting: "Hello, Ada!"}
          error: disk full               # a part of the execution's error
          steps:
            greet: completed             # a status, or {status, attempts, output, error}
          skipped: [notify]              # exactly the steps that ended skipped

Each test runs the workflow in a store in memory, in a workspace of its own (a
temporary directory unless the test gives `workspace`), with retry waits skipped by a
FakeClock: a hermetic, fast run. Unmocked steps call their tools for real unless
`mock_only`. Used by `sire test` and the pytest plugin.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from sire.errors import InputError, SireError
from sire.model.execution import Execution

#: How test files are named; `sire test DIR` finds them below DIR.
SUFFIXES = (".test.yaml", ".test.yml")
_TEST_FIELDS = ("name", "inputs", "mocks", "mock_file", "mock_only", "workspace", "expect")
_EXPECT_FIELDS = ("status", "outputs", "error", "steps", "skipped")
_STEP_FIELDS = ("status", "attempts", "output", "error", "mocked")


class WorkflowTest(NamedTuple):
    """One test of a test file."""

    file: Path
    workflow: Path
    name: str
    inputs: Mapping[str, Any]
    mocks: Mapping[str, Any] | None
    mock_file: Path | None
    mock_only: bool
    workspace: Path | None
    expect: Mapping[str, Any]

    @property
    def id(self) -> str:
        return f"{self.file}::{self.name}"


class TestResult(NamedTuple):
    """How one test went: `failures` lists each unmet expectation in a sentence."""

    test: WorkflowTest
    failures: list[str]
    seconds: float
    execution: Execution | None = None

    @property
    def passed(self) -> bool:
        return not self.failures


def discover(paths: Sequence[Path]) -> list[Path]:
    """Test files among `paths`: files as given, directories searched below.

    Raises:
        InputError: a path does not exist.
    """
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.name.endswith(SUFFIXES))
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(f"{path}: no such file or directory")
    return found


def load_tests(file: Path) -> list[WorkflowTest]:
    """The tests of one test file.

    Raises:
        InputError: the file is not a test file (what is wrong, and where).
    """
    import yaml

    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{file}: cannot read it ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        from sire.dispatch.mock import yaml_problem

        raise InputError(f"{file}: not valid YAML ({yaml_problem(exc)})") from None
    if not isinstance(data, dict) or not isinstance(data.get("workflow"), str):
        raise InputError(f"{file}: a test file names its `workflow:` file and lists `tests:`")
    tests = data.get("tests")
    if not isinstance(tests, list) or not tests:
        raise InputError(f"{file}: `tests:` must be a non-empty list of tests")
    unknown = sorted(set(data) - {"workflow", "tests"})
    if unknown:
        raise InputError(f"{file}: unknown field '{unknown[0]}' (expected workflow, tests)")
    workflow = file.parent / data["workflow"]
    loaded = [_test(file, workflow, i, raw) for i, raw in enumerate(tests)]
    names = [t.name for t in loaded]
    for name in names:
        if names.count(name) > 1:
            raise InputError(f"{file}: two tests are named '{name}'")
    return loaded


def run_test(test: WorkflowTest) -> TestResult:
    """Run one test to its verdict; an error before the run starts is its failure."""
    started = time.perf_counter()
    try:
        with _workspace(test) as workspace:
            execution = asyncio.run(_execute(test, workspace))
    except (SireError, OSError) as exc:
        return TestResult(test, [str(exc)], time.perf_counter() - started)
    failures = check_expectations(test.expect, execution)
    return TestResult(test, failures, time.perf_counter() - started, execution)


def check_expectations(expect: Mapping[str, Any], execution: Execution) -> list[str]:
    """Each expectation `execution` does not meet, in one sentence."""
    failures: list[str] = []
    status = str(execution.status)
    wanted = expect.get("status", "completed")
    if status != wanted:
        why = f" ({execution.error})" if execution.error else ""
        failures.append(f"status: expected {wanted}, got {status}{why}")
    outputs = execution.outputs or {}
    for name, value in (expect.get("outputs") or {}).items():
        if name not in outputs:
            failures.append(f"outputs.{name}: expected {value!r}, but there is no such output")
        elif outputs[name] != value:
            failures.append(f"outputs.{name}: expected {value!r}, got {outputs[name]!r}")
    if "error" in expect and str(expect["error"]) not in (execution.error or ""):
        failures.append(
            f"error: expected it to contain {expect['error']!r}, got {execution.error!r}"
        )
    states = execution.step_states
    for step, want in (expect.get("steps") or {}).items():
        state = states.get(step)
        want = {"status": want} if isinstance(want, str) else want
        if state is None:
            failures.append(f"steps.{step}: expected {want}, but it never ran")
            continue
        got = {
            "status": str(state.status),
            "attempts": state.attempts,
            "output": state.output,
            "error": state.error,
            "mocked": state.mocked,
        }
        for field, value in want.items():
            if field == "error":
                if str(value) not in (state.error or ""):
                    failures.append(
                        f"steps.{step}.error: expected it to contain {value!r}, got {state.error!r}"
                    )
            elif got[field] != value:
                failures.append(f"steps.{step}.{field}: expected {value!r}, got {got[field]!r}")
    if "skipped" in expect:
        skipped = sorted(k for k, s in states.items() if s.status == "skipped" and "/" not in k)
        if skipped != sorted(expect["skipped"]):
            failures.append(f"skipped: expected {sorted(expect['skipped'])}, got {skipped}")
    return failures


async def _execute(test: WorkflowTest, workspace: Path) -> Execution:
    from sire.cli import runtime
    from sire.config import load_config
    from sire.dispatch.mock import MockDispatcher, MockFile
    from sire.engine.engine import Engine
    from sire.model.inputs import resolve_inputs
    from sire.model.loader import load_workflow
    from sire.testing import FakeClock, MemoryStore

    config = load_config()
    workflow = load_workflow(test.workflow, cache_dir=config.cache_dir)
    mux = runtime.build_dispatcher(config)
    runtime.check_workflow(workflow, mux, config)
    if test.mock_file is not None:
        mocks: MockFile | None = MockFile.load(test.mock_file)
    elif test.mocks is not None:
        mocks = MockFile.parse(test.mocks, f"{test.file} ({test.name})")
    else:
        mocks = None
    if mocks is not None:
        mocks.check_steps(workflow)
    dispatcher = MockDispatcher(mux, mocks, mock_only=test.mock_only)
    execution = runtime.new_execution(
        workflow, resolve_inputs(workflow, dict(test.inputs)), workspace
    )
    store = MemoryStore()
    try:
        await store.create_execution(execution, workflow.text)
        engine = Engine(store, dispatcher, clock=FakeClock(), env=config.template_env())
        return await engine.run(workflow, execution)
    finally:
        await dispatcher.aclose()
        await store.aclose()


@contextmanager
def _workspace(test: WorkflowTest) -> Iterator[Path]:
    """The test's own workspace, or a temporary directory removed afterwards."""
    if test.workspace is not None:
        if not test.workspace.is_dir():
            raise InputError(f"{test.workspace}: the test's workspace is not a directory")
        yield test.workspace
        return
    with tempfile.TemporaryDirectory(prefix="sire-test-") as tmp:
        yield Path(tmp)


def _test(file: Path, workflow: Path, index: int, raw: object) -> WorkflowTest:
    where = f"{file}: tests[{index}]"
    if not isinstance(raw, dict):
        raise InputError(f"{where}: a test is a mapping with `name` and `expect`")
    unknown = sorted(set(raw) - set(_TEST_FIELDS))
    if unknown:
        raise InputError(
            f"{where}: unknown field '{unknown[0]}' (a test has {', '.join(_TEST_FIELDS)})"
        )
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise InputError(f"{where}: give the test a `name`")
    where = f"{file}: test '{name}'"
    inputs = raw.get("inputs") or {}
    if not isinstance(inputs, dict):
        raise InputError(f"{where}: `inputs` must map input names to values")
    mocks = raw.get("mocks")
    if mocks is not None and not isinstance(mocks, dict):
        raise InputError(f"{where}: `mocks` must map step ids or tool URIs to outcomes")
    if mocks is not None and raw.get("mock_file") is not None:
        raise InputError(f"{where}: give `mocks` or `mock_file`, not both")
    mock_only = raw.get("mock_only", False)
    if not isinstance(mock_only, bool):
        raise InputError(f"{where}: `mock_only` must be true or false")
    expect = raw.get("expect") or {}
    if not isinstance(expect, dict):
        raise InputError(f"{where}: `expect` must be a mapping")
    _check_expect(expect, where)
    mock_file = raw.get("mock_file")
    workspace = raw.get("workspace")
    return WorkflowTest(
        file=file,
        workflow=workflow,
        name=name,
        inputs=inputs,
        mocks=mocks,
        mock_file=None if mock_file is None else file.parent / str(mock_file),
        mock_only=mock_only,
        workspace=None if workspace is None else file.parent / str(workspace),
        expect=expect,
    )


def _check_expect(expect: Mapping[str, Any], where: str) -> None:
    unknown = sorted(set(expect) - set(_EXPECT_FIELDS))
    if unknown:
        raise InputError(
            f"{where}: unknown expectation '{unknown[0]}' (expect has {', '.join(_EXPECT_FIELDS)})"
        )
    if expect.get("status", "completed") not in ("completed", "failed", "cancelled"):
        raise InputError(f"{where}: expect.status is completed, failed or cancelled")
    if not isinstance(expect.get("outputs") or {}, dict):
        raise InputError(f"{where}: expect.outputs must map output names to values")
    if not isinstance(expect.get("skipped") or [], list):
        raise InputError(f"{where}: expect.skipped must list step ids")
    steps = expect.get("steps") or {}
    if not isinstance(steps, dict):
        raise InputError(f"{where}: expect.steps must map step ids to statuses")
    for step, want in steps.items():
        if isinstance(want, dict):
            bad = sorted(set(want) - set(_STEP_FIELDS))
            if bad:
                raise InputError(
                    f"{where}: expect.steps.{step}: unknown field '{bad[0]}' "
                    f"(a step expectation has {', '.join(_STEP_FIELDS)})"
                )
        elif not isinstance(want, str):
            raise InputError(f"{where}: expect.steps.{step}: give a status or a mapping")


__all__ = [
    "TestResult",
    "WorkflowTest",
    "check_expectations",
    "discover",
    "load_tests",
    "run_test",
]
