"""The supported Python API: `sire.__all__`, pinned, every name importable, import kept cheap."""

from __future__ import annotations

import subprocess
import sys

import sire

API = [
    "CycleError",
    "DefinitionError",
    "DispatchContext",
    "DispatchError",
    "Dispatcher",
    "DispatcherMux",
    "Engine",
    "Execution",
    "ExecutionStatus",
    "InProcessDispatcher",
    "InProcessServer",
    "InputError",
    "MemoryStore",
    "RetryPolicy",
    "SireError",
    "Step",
    "StepState",
    "StepStatus",
    "Store",
    "TemplateError",
    "ToolError",
    "ToolURI",
    "Workflow",
    "load_workflow",
    "parse_workflow",
]


def test_the_public_api_is_exactly_these_names() -> None:
    assert sorted(sire.__all__) == API


def test_every_public_name_resolves() -> None:
    for name in sire.__all__:
        assert getattr(sire, name) is not None, name


def test_importing_sire_loads_none_of_the_heavy_libraries() -> None:
    code = (
        "import sys, sire; heavy = {'pydantic', 'yaml', 'jinja2', 'typer', 'rich', 'mcp', "
        "'httpx', 'fastjsonschema'}; print(sorted(heavy & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
