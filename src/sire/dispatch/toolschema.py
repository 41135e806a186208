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
    None: {"type": "null"},  # as builtin generics keep it: dict[str, None]
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
    if origin in (typing.Required, typing.NotRequired):
        return type_schema(args[0])
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
        # JSON Schema 2020-12, as MCP advertises; `draft7` translates it for validators.
        return {
            "type": "array",
            "prefixItems": [type_schema(a) for a in args],
            "items": False,
            "minItems": len(args),
            "maxItems": len(args),
        }
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        if args and args[1] is not Any:
            return {"type": "object", "additionalProperties": type_schema(args[1])}
        return {"type": "object"}
    if is_typeddict(hint):
        hints = typing.get_type_hints(hint, include_extras=True)
        keys = set(getattr(hint, "__required_keys__", hints))
        for name, key_hint in hints.items():
            # The wrappers win: under `from __future__ import annotations`, Python 3.11
            # counts NotRequired keys in __required_keys__ (and misses Required ones).
            marked = _required_marker(key_hint)
            if marked is True:
                keys.add(name)
            elif marked is False:
                keys.discard(name)
        schema = {
            "type": "object",
            "properties": {name: type_schema(h) for name, h in hints.items()},
            "required": sorted(keys),
        }
        if hint.__doc__:
            schema["description"] = inspect.cleandoc(hint.__doc__).split("\n\n")[0]
        return schema
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {"enum": [member.value for member in hint]}
    raise TypeError(f"type {hint!r} has no JSON Schema")


def _required_marker(hint: Any) -> bool | None:
    """True for `Required[...]`, False for `NotRequired[...]` (inside Annotated too), else None."""
    origin = get_origin(hint)
    if origin is typing.Annotated:
        origin = get_origin(get_args(hint)[0])
    if origin is typing.Required:
        return True
    if origin is typing.NotRequired:
        return False
    return None


def draft7(schema: Schema) -> Schema:
    """`schema` with 2020-12 `prefixItems` rewritten for draft 4-7 validators (fastjsonschema).

    `prefixItems: [...]` becomes `items: [...]`, and the 2020-12 `items` (the schema of
    the items after those) becomes `additionalItems`; subschemas are rewritten alike.
    """
    translated: Schema = {}
    for key, value in schema.items():
        if isinstance(value, dict):
            if key in _SUBSCHEMA:
                value = draft7(value)
            elif key in _SUBSCHEMA_MAPS:
                value = {k: draft7(v) if isinstance(v, dict) else v for k, v in value.items()}
        elif isinstance(value, list) and key in _SUBSCHEMA_LISTS:
            value = [draft7(v) if isinstance(v, dict) else v for v in value]
        translated[key] = value
    if isinstance(translated.get("prefixItems"), list):
        if "items" in translated:
            translated["additionalItems"] = translated.pop("items")
        translated["items"] = translated.pop("prefixItems")
    return translated


_SUBSCHEMA = frozenset(
    {
        "items",
        "additionalItems",
        "additionalProperties",
        "contains",
        "propertyNames",
        "not",
        "if",
        "then",
        "else",
    }
)
_SUBSCHEMA_LISTS = frozenset({"prefixItems", "items", "anyOf", "allOf", "oneOf"})
_SUBSCHEMA_MAPS = frozenset(
    {"properties", "patternProperties", "dependentSchemas", "definitions", "$defs"}
)
_ARG = re.compile(r"(\*{0,2}\w+)(?:\s*\([^)]*\))?:\s*(.*)\Z")


def _doc_args(doc: str) -> dict[str, str]:
    """Descriptions from a Google-style `Args:` section.

    A description may be wrapped over several lines indented deeper than its name.
    The section ends at the next line indented no deeper than `Args:`, such as `Returns:`.
    """
    lines = inspect.cleandoc(doc).splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == "Args:"), None)
    if start is None:
        return {}
    section_indent = _indent(lines[start])
    entry_indent: int | None = None
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines[start + 1 :]:
        text = line.strip()
        if not text:
            continue
        indent = _indent(line)
        if indent <= section_indent:
            break  # the next section
        if entry_indent is None:
            entry_indent = indent
        if indent > entry_indent:
            if current is not None:
                current.append(text)  # a description continued
            continue
        match = _ARG.match(text)
        if match is None:
            current = None
            continue
        current = found[match.group(1).lstrip("*")] = []
        if match.group(2):
            current.append(match.group(2))
    return {name: " ".join(words) for name, words in found.items() if words}


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


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
            default = param.default
            schema["default"] = default.value if isinstance(default, enum.Enum) else default
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


def enum_parameters(fn: Callable[..., Any]) -> dict[str, type[enum.Enum]]:
    """The parameters of `fn` typed as an Enum (or an optional one), with their Enum.

    Their JSON values (the schema's `enum`) are to be turned back into members.
    """
    found: dict[str, type[enum.Enum]] = {}
    for name, hint in typing.get_type_hints(fn).items():
        if name == "return":
            continue
        if get_origin(hint) in (Union, types.UnionType):
            options = [a for a in get_args(hint) if a is not type(None)]
            hint = options[0] if len(options) == 1 else None
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            found[name] = hint
    return found
