"""Template expressions as Python objects: `greet.output.text` is `{{ steps.greet.output.text }}`.

`Expr` is any expression; `Ref` is one whose attributes are unknown until run time
(`.output.anything`); `Fields` is the base of typed outputs, whose attributes are
declared so that a type checker knows them. None of them is evaluated in Python:
they only write template text, which the engine renders when the workflow runs.
"""

from __future__ import annotations

import keyword
from collections.abc import Iterator
from typing import Any, NoReturn

# Jinja reads these as constants or operators, never as a name after a dot.
_JINJA_WORDS = frozenset(
    {"and", "or", "not", "in", "is", "if", "else", "true", "false", "none", "True", "False"}
)


class Expr:
    """A template expression. `str(e)` and `f"{e}"` give `{{ source }}`; `f"{e:raw}"` the source.

    `e["key"]` reads a key, `e | "length"` applies a Jinja filter. An expression has no
    truth value and cannot be iterated in Python: it only exists when the workflow runs.
    """

    __slots__ = ("_source",)

    def __init__(self, source: str) -> None:
        self._source = source

    def __str__(self) -> str:
        return "{{ " + self._source + " }}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._source!r})"

    def __format__(self, spec: str) -> str:
        if spec == "":
            return str(self)
        if spec == "raw":
            return self._source
        raise ValueError(f"unknown format {spec!r} for a template expression (use '' or 'raw')")

    def __getitem__(self, key: str | int) -> Ref:
        if isinstance(key, str) and _is_name(key):
            return Ref(f"{self._source}.{key}")
        if isinstance(key, str | int) and not isinstance(key, bool):
            return Ref(f"{self._source}[{key!r}]")
        raise TypeError(f"a template key is a str or an int, not {type(key).__name__}")

    def __or__(self, jinja_filter: str) -> Ref:
        if not isinstance(jinja_filter, str):
            return NotImplemented
        return Ref(f"{self._source} | {jinja_filter}")

    def __bool__(self) -> NoReturn:
        raise TypeError(
            f"{self!r} has no truth value in Python; it is rendered when the workflow runs "
            "(to skip a step, pass it as when=)"
        )

    def __iter__(self) -> Iterator[Any]:
        raise TypeError(
            f"{self!r} cannot be iterated in Python; to run a step per item, use for_each="
        )


class Ref(Expr):
    """An expression whose attributes are not declared: `ref.name` is `Ref("….name")`."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Ref:
        if name.startswith("_"):  # Python's own protocols (copy, pickle) look for these
            raise AttributeError(name)
        return self[name]


class Fields(Expr):
    """The base of typed outputs: each annotated attribute is the `Ref` of that field.

        class AddOutput(Fields):
            sum: Ref

    Undeclared keys are still reachable as `output["key"]`.
    """

    def __init__(self, source: str) -> None:
        super().__init__(source)
        for cls in type(self).__mro__:
            for name in getattr(cls, "__annotations__", {}):
                if not name.startswith("_"):
                    setattr(self, name, self[name])


def expr(source: str) -> Ref:
    """An expression written in Jinja, e.g. `expr(f"{check.output.exit_code:raw} == 0")`."""
    return Ref(source.strip())


def _is_name(key: str) -> bool:
    return key.isidentifier() and not keyword.iskeyword(key) and key not in _JINJA_WORDS


#: `item` and `index` inside a `for_each` step: the current item and its position.
item = Ref("item")
index = Ref("index")
#: The run's context: `execution.workspace`, `execution.id`, `secrets.NAME`, `env.NAME`.
execution = Ref("execution")
secrets = Ref("secrets")
env = Ref("env")
