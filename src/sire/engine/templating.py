"""Templates in a sandbox: a workflow's `with`, `if`, `for_each` and `outputs`, compiled once.

A value that is exactly one `{{ … }}` renders to the expression's native value; any
other string renders to a string. Constant subtrees are returned as they are.
Rendering errors become `TemplateError`s naming the step and path. Jinja2 loads
only when a workflow has a template.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from sire.errors import SireError, TemplateError
from sire.model import expressions

Context = Mapping[str, Any]
Renderer = Callable[[Context], Any]


def environment() -> Any:
    """The one sandboxed environment every workflow template compiles in (`sire.engine.sandbox`)."""
    from sire.engine.sandbox import environment as sandbox

    return sandbox()


class Secrets(dict[str, str]):
    """The `secrets` a template sees; reading one that is not set is a clear error."""

    def __missing__(self, name: str) -> str:
        raise TemplateError(f"secret '{name}' is not set")


def compile_value(value: Any, where: str) -> Renderer | None:
    """Compile every template inside `value`; None when `value` holds no template.

    Raises:
        TemplateError: a template does not compile (the loader has usually caught it).
    """
    if isinstance(value, str):
        return _compile_string(value, where) if expressions.is_template(value) else None
    if isinstance(value, dict):
        items: list[tuple[str, Renderer | None, Any]] = []
        dynamic = False
        for key, item in value.items():
            renderer = compile_value(item, f"{where}.{key}") if _may_hold(item) else None
            dynamic = dynamic or renderer is not None
            items.append((key, renderer, item))
        if not dynamic:
            return None
        return lambda ctx: {k: (p(ctx) if p is not None else v) for k, p, v in items}
    if isinstance(value, list):
        compiled = [compile_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if all(p is None for p in compiled):
            return None
        pairs = list(zip(compiled, value, strict=True))
        return lambda ctx: [p(ctx) if p is not None else v for p, v in pairs]
    return None


def _may_hold(value: Any) -> bool:
    """Whether `value` may contain a template (cheap: scalars other than strings cannot)."""
    return isinstance(value, dict | list) or (isinstance(value, str) and "{" in value)


def render(renderer: Renderer | None, value: Any, ctx: Context) -> Any:
    """Render `value` with its compiled `renderer` (None: `value` is constant)."""
    return value if renderer is None else renderer(ctx)


def _compile_string(text: str, where: str) -> Renderer:
    source = expressions.normalize(text)
    pieces = _path_pieces(source)
    if pieces is not None:
        return _PathTemplate(pieces, source, where)
    return _compile_jinja(source, where)


_BLOCK = re.compile(r"\{\{(.*?)\}\}", re.S)


def _path(expression: str) -> tuple[str, ...] | None:
    parts = tuple(expression.strip().split("."))
    return parts if all(part.isidentifier() for part in parts) else None


def _path_pieces(source: str) -> list[str | tuple[str, ...]] | None:
    """Split a template made only of `{{ a.b.c }}` paths into text and paths; else None."""
    if "{%" in source or "{#" in source:
        return None
    if source.startswith("{{") and source.endswith("}}") and source.count("{{") == 1:
        path = _path(source[2:-2])
        return None if path is None else [path]
    pieces: list[str | tuple[str, ...]] = []
    position = 0
    for block in _BLOCK.finditer(source):
        path = _path(block.group(1))
        if path is None:
            return None
        if block.start() > position:
            pieces.append(source[position : block.start()])
        pieces.append(path)
        position = block.end()
    if position < len(source):
        pieces.append(source[position:])
    if any(isinstance(p, str) and "{{" in p for p in pieces):
        return None
    return pieces


class _NotAPath(Exception):
    """A value the fast path does not cover (not a mapping, missing key): Jinja decides."""


def _lookup(ctx: Context, parts: tuple[str, ...]) -> Any:
    value: Any = ctx
    for part in parts:
        if not isinstance(value, dict):
            raise _NotAPath
        try:
            value = value[part]
        except KeyError:
            raise _NotAPath from None
    return value


class _PathTemplate:
    """A template of `{{ a.b.c }}` paths, rendered by key lookups instead of Jinja.

    Most templates only read values (`{{ steps.x.output.y }}`). Anything the lookups
    do not cover (a list, a missing key) renders through the same template compiled
    by Jinja, so results and errors are exactly Jinja's.
    """

    __slots__ = ("_jinja", "pieces", "source", "where")

    def __init__(self, pieces: list[str | tuple[str, ...]], source: str, where: str) -> None:
        self.pieces = pieces
        self.source = source
        self.where = where
        self._jinja: Renderer | None = None

    def __call__(self, ctx: Context) -> Any:
        pieces = self.pieces
        try:
            if len(pieces) == 1 and isinstance(pieces[0], tuple):
                return _lookup(ctx, pieces[0])  # exactly one {{ }}: the native value
            return "".join(p if isinstance(p, str) else str(_lookup(ctx, p)) for p in pieces)
        except _NotAPath:
            if self._jinja is None:
                self._jinja = _compile_jinja(self.source, self.where)
            return self._jinja(ctx)
        except SireError as exc:
            raise TemplateError(f"{self.where}: {exc}") from None


def _compile_jinja(source: str, where: str) -> Renderer:
    from jinja2 import Undefined
    from jinja2.exceptions import TemplateError as JinjaTemplateError

    from sire.engine.sandbox import MAX_SIZE, plain

    env = environment()
    try:
        expr = expressions.single_expression(source)
        if expr is not None:
            native = env.compile_expression(expr, undefined_to_none=False)

            def evaluate(ctx: Context) -> Any:
                value = native(**ctx)
                if isinstance(value, Undefined):
                    value._fail_with_undefined_error()
                return plain(value, MAX_SIZE)

            return lambda ctx: _guard(lambda: evaluate(ctx), where)
        template = env.from_string(source)
    except JinjaTemplateError as exc:
        raise TemplateError(f"{where}: template does not compile: {exc}") from None
    except Exception as exc:  # not the template's syntax: fail the render, not the run
        error = TemplateError(f"{where}: template does not compile: {type(exc).__name__}: {exc}")

        def fail(ctx: Context) -> Any:
            raise error

        return fail
    return lambda ctx: _guard(lambda: template.render(ctx), where)


def _guard(call: Callable[[], Any], where: str) -> Any:
    """Render under the sandbox's budget; every failure becomes a TemplateError."""
    from jinja2.exceptions import SecurityError
    from jinja2.exceptions import TemplateError as JinjaTemplateError

    from sire.engine.sandbox import bounded

    try:
        return bounded(call)
    except SireError as exc:
        raise TemplateError(f"{where}: {exc}") from None
    except SecurityError as exc:
        raise TemplateError(f"{where}: not allowed in a template: {exc}") from None
    except JinjaTemplateError as exc:
        raise TemplateError(f"{where}: {exc.message or exc}") from None
    except RecursionError:
        raise TemplateError(f"{where}: the template recurses too deeply") from None
    except MemoryError:
        raise TemplateError(f"{where}: the template ran out of memory") from None
    except Exception as exc:
        raise TemplateError(f"{where}: {type(exc).__name__}: {exc}") from None
