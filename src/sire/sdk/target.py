"""`module:attr` -> the SDK `Workflow` it names, for `sire workflow compile`.

The module is a dotted name importable from the current directory or `sys.path`
(as uvicorn's `module:app`), or a path to a `.py` file. The attribute is a
`sire.sdk.Workflow`, or a function taking no arguments that returns one.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from collections.abc import Callable
from types import ModuleType
from typing import ParamSpec, TypeVar

from sire.errors import InputError, SireError
from sire.sdk.workflow import Workflow

P = ParamSpec("P")
R = TypeVar("R")
_SIRE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_target(target: str) -> Workflow:
    """Import `target` (`module:attr`) and return the workflow it names.

    Raises:
        InputError: `target` is malformed, or names no module, no attribute, or
            something that is not a workflow; or importing or calling it failed.
        DefinitionError: the SDK found the workflow invalid while it was defined.
    """
    module_name, colon, attr = target.rpartition(":")
    if not colon or not module_name or not attr:
        raise InputError(
            f"'{target}' is not MODULE:ATTR (e.g. examples.sdk.greet:workflow or "
            "path/to/flows.py:workflow)"
        )
    module = _import(module_name)
    value: object = module
    for part in attr.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise InputError(f"module '{module_name}' has no attribute '{attr}'") from None
    if isinstance(value, Workflow):
        return value
    if callable(value) and not isinstance(value, type):
        result = _guarded(f"calling '{target}'", value)
        if isinstance(result, Workflow):
            return result
        raise InputError(
            f"'{target}' returned a value of type {type(result).__name__}, not a sire.sdk.Workflow"
        )
    raise InputError(
        f"'{target}' is of type {type(value).__name__}, not a sire.sdk.Workflow "
        "(or a function returning one)"
    )


def _import(name: str) -> ModuleType:
    if name.endswith(".py") or os.sep in name or "/" in name:
        return _import_file(name)
    here = os.getcwd()
    sys.path.insert(0, here)  # like `python -m`: the current directory first
    try:
        return _guarded(f"importing '{name}'", importlib.import_module, name)
    except InputError as exc:
        cause = exc.__cause__
        if isinstance(cause, ModuleNotFoundError) and _is_prefix(cause.name, name):
            raise InputError(
                f"no module named '{name}' in the current directory or on sys.path"
            ) from None
        raise
    finally:
        sys.path.remove(here)


def _import_file(path: str) -> ModuleType:
    if not os.path.isfile(path):
        raise InputError(f"no Python file '{path}'")
    stem = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(f"_sire_compile.{stem}", path)
    if spec is None or spec.loader is None:
        raise InputError(f"'{path}' cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    # Registered while it runs, so dataclasses and pickling can find the module.
    sys.modules[spec.name] = module
    try:
        _guarded(f"importing '{path}'", spec.loader.exec_module, module)
    finally:
        sys.modules.pop(spec.name, None)
    return module


def _is_prefix(missing: str | None, name: str) -> bool:
    """Whether the module that was not found is `name` or one of its parent packages."""
    return missing is not None and (name == missing or name.startswith(missing + "."))


def _guarded(what: str, function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run the user's code; any failure but Sire's own is an InputError naming where."""
    try:
        return function(*args, **kwargs)
    except SireError:
        raise
    except (Exception, SystemExit) as exc:  # the user's code: anything may come out of it
        message = next(iter(str(exc).splitlines()), "")
        detail = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
        raise InputError(f"{_user_frame(exc)}{what} failed: {detail}") from exc


def _user_frame(exc: BaseException) -> str:
    """`file:line: ` of the innermost frame of the user's code in `exc`'s traceback."""
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        return f"{_shown(exc.filename)}:{exc.lineno}: "
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        file = os.path.abspath(frame.filename)
        if not frame.filename.startswith("<") and not file.startswith(_SIRE + os.sep):
            return f"{_shown(file)}:{frame.lineno}: "
    return ""


def _shown(file: str) -> str:
    """`file` relative to the current directory when it is inside it."""
    file = os.path.abspath(file)
    return os.path.relpath(file) if file.startswith(os.getcwd() + os.sep) else file
