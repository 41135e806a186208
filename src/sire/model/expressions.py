"""What a template string is: `{{ … }}` syntax, the `.secrets` synonym, the names it reads.

The model uses this to find implicit dependencies (`steps.<id>`) and unknown names
when a workflow is loaded; the engine (`sire.engine.templating`) compiles the same
normalized source in a sandbox. Only parsing happens here, never rendering.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any, NamedTuple

_SINGLE = re.compile(r"\A\{\{(?P<expr>(?:(?!\}\}|\{\{).)*)\}\}\Z", re.S)
_BLOCK = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
# A string literal (Jinja's own lexer pattern) is matched first and kept as it is.
_DOT_SECRETS = re.compile(
    r"""(?P<string>'[^'\\]*(?:\\.[^'\\]*)*'|"[^"\\]*(?:\\.[^"\\]*)*")"""
    r"""|(?<![\w.\])}'"])\.(?P<name>secrets)\b""",
    re.S,
)

#: Names every template may read; `item` and `index` exist only inside `for_each` steps.
CONTEXT_NAMES = frozenset({"inputs", "steps", "secrets", "env", "execution"})
ITEM_NAMES = frozenset({"item", "index"})


def is_template(value: str) -> bool:
    """Whether `value` contains template syntax at all."""
    return "{{" in value or "{%" in value


def normalize(value: str) -> str:
    """Rewrite the `{{ .secrets.x }}` synonym to `{{ secrets.x }}` inside template blocks."""
    if ".secrets" not in value:
        return value
    return _BLOCK.sub(lambda m: _DOT_SECRETS.sub(_undot, m.group()), value)


def _undot(match: re.Match[str]) -> str:
    return match["string"] if match["string"] is not None else match["name"]


def single_expression(value: str) -> str | None:
    """The expression of a value that is exactly one `{{ … }}` (it keeps its native type)."""
    match = _SINGLE.match(value)
    return match.group("expr").strip() if match else None


class References(NamedTuple):
    """The context a template reads: step ids, input names, and every top-level name."""

    steps: frozenset[str]
    inputs: frozenset[str]
    names: frozenset[str]


class TemplateSyntaxError(ValueError):
    """A template does not parse, or reads `steps` in a way that hides which step."""


@lru_cache(maxsize=4096)
def references(source: str) -> References:
    """Parse a (normalized) template and return what it reads.

    Raises:
        TemplateSyntaxError: the template does not parse, or indexes `steps` dynamically.
    """
    from jinja2 import meta, nodes
    from jinja2.exceptions import TemplateSyntaxError as JinjaSyntaxError

    try:
        ast = _parser_env().parse(source)
    except JinjaSyntaxError as exc:
        raise TemplateSyntaxError(f"template syntax error: {exc.message}") from None
    steps: set[str] = set()
    inputs: set[str] = set()
    claimed: set[int] = set()
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        target = node.node
        if not isinstance(target, nodes.Name) or target.name not in ("steps", "inputs"):
            continue
        if isinstance(node, nodes.Getattr):
            key: Any = node.attr
        elif isinstance(node.arg, nodes.Const):
            key = node.arg.value
        else:
            key = None
        if not isinstance(key, str):
            raise TemplateSyntaxError(
                f"'{target.name}' must be read with a literal name, "
                f"like {target.name}.<name>, so dependencies are known before running"
            )
        (steps if target.name == "steps" else inputs).add(key)
        claimed.add(id(target))
    for name in ast.find_all(nodes.Name):
        if name.name == "steps" and name.ctx == "load" and id(name) not in claimed:
            raise TemplateSyntaxError(
                "'steps' must be read as steps.<id>, so dependencies are known before running"
            )
    names = frozenset(meta.find_undeclared_variables(ast))
    return References(frozenset(steps), frozenset(inputs), names)


@lru_cache(maxsize=1)
def _parser_env() -> Any:
    """An environment that finds a template's names and never computes its constants.

    Finding names generates code, and Jinja's optimizer folds constant expressions while
    it does: `{{ 'x' * 10**10 }}` would be built when the workflow is loaded. Every
    operator here is intercepted and every filter and test needs a render, so nothing
    is folded.
    """
    from jinja2 import pass_context
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Parser(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset(ImmutableSandboxedEnvironment.default_binop_table)
        intercepted_unops = frozenset(ImmutableSandboxedEnvironment.default_unop_table)

    env = Parser()
    stub = pass_context(lambda *args, **kwargs: None)
    env.filters = dict.fromkeys(env.filters, stub)
    env.tests = dict.fromkeys(env.tests, stub)
    return env


def strings(value: object, path: str) -> Iterator[tuple[str, str]]:
    """Yield `(path, string)` for every string holding template syntax inside `value`."""
    if isinstance(value, str):
        if is_template(value):
            yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, f"{path}[{index}]")
