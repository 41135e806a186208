"""Templates in a sandbox: a workflow's `with`, `if`, `for_each` and `outputs`, compiled once.

A value that is exactly one `{{ … }}` renders to the expression's native value; any
other string renders to a string. Constant subtrees are returned as they are.
Rendering errors become `TemplateError`s naming the step and path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Undefined
from jinja2.exceptions import SecurityError
from jinja2.exceptions import TemplateError as JinjaTemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from sire.errors import SireError, TemplateError
from sire.model import expressions

Context = Mapping[str, Any]
Renderer = Callable[[Context], Any]


class _Environment(ImmutableSandboxedEnvironment):
    """Mappings are read by key first: `output.items` is the key `items`, not `dict.items`."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


@lru_cache(maxsize=1)
def environment() -> ImmutableSandboxedEnvironment:
    """The one sandboxed environment every template compiles in."""
    return _Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


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
    env = environment()
    source = expressions.normalize(text)
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
