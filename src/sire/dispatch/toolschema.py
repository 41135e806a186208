"""JSON Schemas derived from Python type hints, for tools registered in-process.

Supports what tool signatures need: str, int, float, bool, None, Any, list, tuple,
dict[str, T], Literal, enums, unions/Optional, TypedDict and `Annotated[T, "doc"]`.
Parameter descriptions come from the function's Google-style `Args:` section.
"""

from __future__ import annotations

import enum
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Union, get_args, get_origin, is_typeddict

Schema = dict[str, Any]

_SCALARS: dict[Any, Schema] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
    Any: {},
    object: {},
}


def type_schema(hint: Any) -> Schema:
    """The JSON Schema of values of type `hint`.

    Raises:
        TypeError: `hint` has no JSON Schema (e.g. a class that is not a TypedDict).
    """
    if hint in _SCALARS:
        return dict(_SCALARS[hint])
    origin, args = get_origin(hint), get_args(hint)
    if origin is typing.Annotated:
        schema = type_schema(args[0])
        docs = [a for a in args[1:] if isinstance(a, str)]
        if docs:
            schema["description"] = docs[0]
        return schema
    if origin is Literal:
        return {"enum": list(args)}
    if origin in (Union, types.UnionType):
        options = [type_schema(a) for a in args]
        if all(set(o) == {"type"} for o in options):
            return {"type": [o["type"] for o in options]}
        return {"anyOf": options}
    if origin in (list, Sequence, set, frozenset) or hint in (list, set):
        return {"type": "array", "items": type_schema(args[0])} if args else {"type": "array"}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": type_schema(args[0])}
        return {"type": "array", "prefixItems": [type_schema(a) for a in args], "items": False}
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        if args and args[1] is not Any:
            return {"type": "object", "additionalProperties": type_schema(args[1])}
        return {"type": "object"}
    if is_typeddict(hint):
        hints = typing.get_type_hints(hint, include_extras=True)
        required = sorted(getattr(hint, "__required_keys__", hints))
        schema = {
            "type": "object",
            "properties": {name: type_schema(h) for name, h in hints.items()},
            "required": required,
        }
        if hint.__doc__:
            schema["description"] = inspect.cleandoc(hint.__doc__).split("\n\n")[0]
        return schema
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {"enum": [member.value for member in hint]}
    raise TypeError(f"type {hint!r} has no JSON Schema")


def _doc_args(doc: str) -> dict[str, str]:
    """Descriptions from a Google-style `Args:` section."""
    section = re.search(r"^\s*Args:\s*\n((?:\s+.*\n?)*)", doc, re.M)
    if not section:
        return {}
    found: dict[str, str] = {}
    for match in re.finditer(r"^\s+(\*{0,2}\w+)(?:\s*\([^)]*\))?:\s*(.+)$", section.group(1), re.M):
        found[match.group(1).lstrip("*")] = match.group(2).strip()
    return found


def function_schemas(
    fn: Callable[..., Any], *, injected: tuple[type, ...] = ()
) -> tuple[Schema, Schema | None, str | None]:
    """Derive `(inputSchema, outputSchema, context parameter)` from `fn`'s signature.

    A parameter annotated with one of the `injected` types is left out of the schema
    and its name returned, so the caller can pass the context there. `**kwargs`
    allows additional properties.

    Raises:
        TypeError: a parameter has no annotation or its type has no JSON Schema.
    """
    hints = typing.get_type_hints(fn, include_extras=True)
    docs = _doc_args(fn.__doc__ or "")
    properties: Schema = {}
    required: list[str] = []
    context_param: str | None = None
    additional = False
    for name, param in inspect.signature(fn).parameters.items():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            additional = True
            continue
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            raise TypeError(f"{fn.__name__}: *{name} cannot be a tool argument")
        if name not in hints:
            raise TypeError(f"{fn.__name__}: parameter '{name}' needs a type annotation")
        hint = hints[name]
        if isinstance(hint, type) and injected and issubclass(hint, injected):
            context_param = name
            continue
        schema = type_schema(hint)
        if name in docs and "description" not in schema:
            schema["description"] = docs[name]
        if param.default is inspect.Parameter.empty:
            required.append(name)
        else:
            schema["default"] = param.default
        properties[name] = schema
    input_schema: Schema = {"type": "object", "properties": properties}
    if required:
        input_schema["required"] = required
    input_schema["additionalProperties"] = additional
    returns = hints.get("return", Any)
    output_schema = None
    if returns not in (Any, None, type(None)):
        output_schema = type_schema(returns)
        if output_schema.get("type") != "object":
            raise TypeError(f"{fn.__name__}: a tool must return an object (a dict or TypedDict)")
    return input_schema, output_schema, context_param
