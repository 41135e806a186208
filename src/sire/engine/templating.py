"""Templates in a sandbox: a workflow's `with`, `if`, `for_each` and `outputs`, compiled once.

A value that is exactly one `{{ … }}` renders to the expression's native value; any
other string renders to a string. Constant subtrees are returned as they are.
Rendering errors become `TemplateError`s naming the step and path. Jinja2 loads
only when a workflow has a template.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from sire.errors import SireError, TemplateError
from sire.model import expressions

Context = Mapping[str, Any]
Renderer = Callable[[Context], Any]


@lru_cache(maxsize=1)
def environment() -> Any:
    """The one sandboxed environment every template compiles in."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Environment(ImmutableSandboxedEnvironment):
        """Mappings are read by key first: `output.items` is the key, not `dict.items`."""

        def getattr(self, obj: Any, attribute: str) -> Any:
            if type(obj) is dict:
                try:
                    return obj[attribute]
                except KeyError:
                    pass
            return super().getattr(obj, attribute)

    return Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


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
        parts = {k: compile_value(v, f"{where}.{k}") for k, v in value.items()}
        if all(p is None for p in parts.values()):
            return None
        items = [(k, p, value[k]) for k, p in parts.items()]
        return lambda ctx: {k: (p(ctx) if p is not None else v) for k, p, v in items}
    if isinstance(value, list):
        compiled = [compile_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if all(p is None for p in compiled):
            return None
        pairs = list(zip(compiled, value, strict=True))
        return lambda ctx: [p(ctx) if p is not None else v for p, v in pairs]
    return None


def render(renderer: Renderer | None, value: Any, ctx: Context) -> Any:
    """Render `value` with its compiled `renderer` (None: `value` is constant)."""
    return value if renderer is None else renderer(ctx)


def _compile_string(text: str, where: str) -> Renderer:
    source = expressions.normalize(text)
    jinja: list[Renderer] = []

    def slow(ctx: Context) -> Any:
        if not jinja:
            jinja.append(_compile_jinja(source, where))
        return jinja[0](ctx)

    fast = _compile_paths(source, where, slow)
    if fast is not None:
        return fast
    return _compile_jinja(source, where)


_PATH = re.compile(r"\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*\Z")
_BLOCK = re.compile(r"\{\{(.*?)\}\}", re.S)


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


def _compile_paths(source: str, where: str, slow: Renderer) -> Renderer | None:
    """A renderer for templates made only of `{{ a.b.c }}` paths, without Jinja.

    Most templates only read values (`{{ steps.x.output.y }}`); they render here by
    key lookups, and anything else (a list, a missing key) goes to `slow`, the same
    template compiled by Jinja, so results and errors are exactly Jinja's.
    """
    if "{%" in source or "{#" in source:
        return None
    pieces: list[str | tuple[str, ...]] = []
    position = 0
    for block in _BLOCK.finditer(source):
        path = _PATH.match(block.group(1))
        if path is None:
            return None
        if block.start() > position:
            pieces.append(source[position : block.start()])
        pieces.append(tuple(path.group(1).split(".")))
        position = block.end()
    if position < len(source):
        pieces.append(source[position:])
    if "{{" in "".join(p for p in pieces if isinstance(p, str)):
        return None

    if len(pieces) == 1 and isinstance(pieces[0], tuple):
        parts = pieces[0]

        def native(ctx: Context) -> Any:
            try:
                return _lookup(ctx, parts)
            except _NotAPath:
                return slow(ctx)
            except SireError as exc:
                raise TemplateError(f"{where}: {exc}") from None

        return native

    def interpolate(ctx: Context) -> Any:
        try:
            return "".join(p if isinstance(p, str) else str(_lookup(ctx, p)) for p in pieces)
        except _NotAPath:
            return slow(ctx)
        except SireError as exc:
            raise TemplateError(f"{where}: {exc}") from None

    return interpolate


def _compile_jinja(source: str, where: str) -> Renderer:
    from jinja2 import Undefined
    from jinja2.exceptions import TemplateError as JinjaTemplateError

    env = environment()
    try:
        expr = expressions.single_expression(source)
        if expr is not None:
            native = env.compile_expression(expr, undefined_to_none=False)

            def render_native(ctx: Context) -> Any:
                value = _guard(lambda: native(**ctx), where)
                if isinstance(value, Undefined):
                    _guard(value._fail_with_undefined_error, where)
                return value

            return render_native
        template = env.from_string(source)
    except JinjaTemplateError as exc:
        raise TemplateError(f"{where}: template does not compile: {exc}") from None
    return lambda ctx: _guard(lambda: template.render(ctx), where)


def _guard(call: Callable[[], Any], where: str) -> Any:
    from jinja2.exceptions import SecurityError
    from jinja2.exceptions import TemplateError as JinjaTemplateError

    try:
        return call()
    except SireError as exc:
        raise TemplateError(f"{where}: {exc}") from None
    except SecurityError as exc:
        raise TemplateError(f"{where}: not allowed in a template: {exc}") from None
    except JinjaTemplateError as exc:
        raise TemplateError(f"{where}: {exc.message or exc}") from None
    except Exception as exc:
        raise TemplateError(f"{where}: {type(exc).__name__}: {exc}") from None
