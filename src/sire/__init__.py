"""Sire: a workflow orchestrator for tools that speak the Model Context Protocol.

The supported Python API is `__all__`; names load on first use, so `import sire`
stays cheap for the command line.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Workflow": "sire.model.workflow",
    "Step": "sire.model.workflow",
    "RetryPolicy": "sire.model.workflow",
    "ToolURI": "sire.model.uri",
    "Execution": "sire.model.execution",
    "ExecutionStatus": "sire.model.execution",
    "StepState": "sire.model.execution",
    "StepStatus": "sire.model.execution",
    "load_workflow": "sire.model.loader",
    "parse_workflow": "sire.model.loader",
    "Engine": "sire.engine.engine",
    "Dispatcher": "sire.dispatch.dispatcher",
    "DispatchContext": "sire.dispatch.dispatcher",
    "DispatcherMux": "sire.dispatch.mux",
    "InProcessServer": "sire.dispatch.inprocess",
    "InProcessDispatcher": "sire.dispatch.inprocess",
    "Store": "sire.storage.base",
    "MemoryStore": "sire.storage.memory",
    "SireError": "sire.errors",
    "DefinitionError": "sire.errors",
    "CycleError": "sire.errors",
    "InputError": "sire.errors",
    "TemplateError": "sire.errors",
    "DispatchError": "sire.errors",
    "ToolError": "sire.errors",
}

__all__ = [
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

if TYPE_CHECKING:
    from sire.dispatch.dispatcher import DispatchContext, Dispatcher
    from sire.dispatch.inprocess import InProcessDispatcher, InProcessServer
    from sire.dispatch.mux import DispatcherMux
    from sire.engine.engine import Engine
    from sire.errors import (
        CycleError,
        DefinitionError,
        DispatchError,
        InputError,
        SireError,
        TemplateError,
        ToolError,
    )
    from sire.model.execution import Execution, ExecutionStatus, StepState, StepStatus
    from sire.model.loader import load_workflow, parse_workflow
    from sire.model.uri import ToolURI
    from sire.model.workflow import RetryPolicy, Step, Workflow
    from sire.storage.base import Store
    from sire.storage.memory import MemoryStore


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sire' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
