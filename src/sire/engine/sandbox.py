"""The hardened Jinja2 sandbox every template renders in: a workflow's and `text.template`'s.

Jinja's `ImmutableSandboxedEnvironment` already refuses attribute escapes (`__class__`,
`__globals__`, `_private`, fields such as `{0.__class__}` in `str.format`) and mutating
the context (`dict.update`, `list.pop`). This module closes what it leaves open:

- **size**: nothing a template builds, and nothing it outputs in all, is longer than
  `max_size` characters or items (`'x' * 10**10`, `'%0999999999d' % 1`, `center`,
  `replace`, `join`, `~` doubling in a loop, a list of a million references printed);
- **work**: every loop iteration, call, filter and guarded operator counts against a
  budget of `MAX_WORK` steps, and a render stops after `MAX_SECONDS` (nested loops,
  exponential macros);
- **values**: what a template shows or returns is data, never a function, class,
  generator or Jinja object (whose text would reveal internals such as addresses).

Violations raise Jinja's `SecurityError`; `sire.engine.templating` turns them into
`TemplateError`s naming the step. Renders go through `bounded`, which sets the budget.
"""

from __future__ import annotations

import re
import time
import types
from collections import abc
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from functools import lru_cache, partial, update_wrapper
from string import Formatter
from typing import Any, TypeVar

T = TypeVar("T")

#: The longest string (characters) or list (items) a template may build or output.
MAX_SIZE = 10 * 1024 * 1024
#: Loop iterations, calls, filters and guarded operators in one render.
MAX_WORK = 1_000_000
#: Wall time of one render.
MAX_SECONDS = 2.0
#: The most items `range`, `batch` or `slice` may make, and lipsum paragraphs.
MAX_COUNT = 100_000
#: The largest integer a template may compute, in bits.
MAX_INT_BITS = 1_000_000

_TIME_CHECK_EVERY = 64
#: A macro call costs as much work as this many loop iterations.
_MACRO_WORK = 16


class _Budget:
    """What one render may still do; lives in a ContextVar while it runs."""

    __slots__ = ("deadline", "output", "work")

    def __init__(self) -> None:
        self.work = MAX_WORK
        self.output = 0
        self.deadline = time.monotonic() + MAX_SECONDS


_budget: ContextVar[_Budget | None] = ContextVar("sire_template_budget", default=None)


def bounded(render: Callable[[], T]) -> T:
    """Call `render` (one template render) under a fresh work and time budget."""
    token = _budget.set(_Budget())
    try:
        return render()
    finally:
        _budget.reset(token)


def _security_error(message: str) -> Exception:
    from jinja2.exceptions import SecurityError

    return SecurityError(message)


def _charge(work: int = 1) -> None:
    budget = _budget.get()
    if budget is None:  # compile time: only the size checks apply
        return
    left = budget.work = budget.work - work
    if left < 0:
        raise _security_error(
            f"the template does more than {MAX_WORK:,} steps of work (loop iterations and calls)"
        )
    if (work > 1 or left % _TIME_CHECK_EVERY == 0) and time.monotonic() > budget.deadline:
        raise _security_error(f"the template ran for more than {MAX_SECONDS:g} s")


def _emit(size: int, limit: int) -> None:
    """Count `size` characters of output against the render's total."""
    budget = _budget.get()
    if budget is None:
        return
    budget.output += size
    if budget.output > limit:
        raise _security_error(f"the template's output is longer than {limit:,} characters")


def _too_long(what: str, size: int, limit: int) -> None:
    if size > limit:
        raise _security_error(
            f"{what} would be {size:,} characters or items long, over the limit of {limit:,}"
        )


_SCALARS = (str, bool, float, type(None))
_LISTS = (list, tuple)
_LAZY = (types.GeneratorType, range, abc.KeysView, abc.ValuesView, abc.ItemsView, map, filter)


def measure(value: Any, limit: int) -> int:
    """The length of `value`'s text, counted until it passes `limit` (then refused).

    Shared references count each time (`[big] * 1000` is a thousand `big`s once shown).

    Raises:
        SecurityError: `value` is or holds code or a Jinja object (a function, class,
            generator, macro, ...), or its text is longer than `limit`.
    """
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item) + 2
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        elif isinstance(item, _SCALARS):
            total += 5
        elif isinstance(item, _SEQUENCES):
            total += len(item) + 2
            stack.extend(item)
        elif isinstance(item, dict):
            total += 2 * len(item) + 2
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, _CODE) or type(item).__module__.startswith("jinja2."):
            _not_data(item)
        else:  # another object a tool returned (or a dry run's placeholder): its text
            total += len(str(item))
        if total > limit:
            _too_long("the value", total, limit)
    return total


_SEQUENCES = (list, tuple, range, abc.KeysView, abc.ValuesView, abc.ItemsView)
#: What a template must never show or hand on: its text would reveal internals.
_CODE = (
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.MethodWrapperType,
    types.WrapperDescriptorType,
    types.MethodDescriptorType,
    types.ClassMethodDescriptorType,
    types.ModuleType,
    types.GeneratorType,
    types.CoroutineType,
    types.AsyncGeneratorType,
    types.FrameType,
    types.CodeType,
    types.TracebackType,
    partial,
)


def _not_data(value: Any) -> None:
    from jinja2 import Undefined

    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    kind = "class" if isinstance(value, type) else type(value).__name__
    raise _security_error(f"a template value must be data, not a {kind}")


def plain(value: Any, limit: int) -> Any:
    """The native value of an expression, made data: a lazy sequence becomes a list.

    Raises:
        SecurityError: the value is not data, or is longer than `limit`.
    """
    if isinstance(value, _SCALARS) or type(value) is int:
        return value
    if isinstance(
        value,
        types.GeneratorType | range | abc.KeysView | abc.ValuesView | abc.ItemsView | map | filter,
    ):
        items: list[Any] = []
        for item in value:
            _charge()
            items.append(item)
        value = items
    measure(value, limit)
    return value


# -- checks of operations that can build big values ------------------------------------

_NUMBER = re.compile(r"\d+")
_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?(.)", re.S)


def _widths(numbers: Iterable[str], limit: int) -> int:
    total = 0
    for number in numbers:
        width = int(number) if len(number) < 12 else limit + 1
        _too_long("a format width", width, limit)
        total += width
    return total


def _biggest(values: Iterable[Any], limit: int) -> int:
    return max((measure(v, limit) for v in values), default=0)


def _int_args(values: Iterable[Any], limit: int) -> None:
    for value in values:
        if type(value) is int:
            _too_long("a format width", value, limit)


def check_printf(fmt: str, args: Any, limit: int) -> None:
    """Refuse `fmt % args` when its result could be longer than `limit`."""
    fields = _PRINTF.findall(fmt)
    if not fields:
        return
    values = list(args.values()) if isinstance(args, Mapping) else args
    values = list(values) if isinstance(values, tuple | list) else [values]
    if any("*" in (width, precision) for width, precision, _ in fields):
        _int_args(values, limit)
    numbers = [n for width, precision, _ in fields for n in (width, precision) if n.isdigit()]
    size = len(fmt) + _widths(numbers, limit) + len(fields) * _biggest(values, limit)
    _too_long("the formatted string", size, limit)


def check_format(fmt: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], limit: int) -> None:
    """Refuse `fmt.format(*args, **kwargs)` when its result could be longer than `limit`."""
    try:
        parsed = list(Formatter().parse(fmt))
    except ValueError:
        return  # str.format raises its own error
    fields = [spec for _, name, spec, _ in parsed if name is not None]
    if not fields:
        return
    values = [*args, *kwargs.values()]
    if any("{" in (spec or "") for spec in fields):
        _int_args(values, limit)
    numbers = [n for spec in fields for n in _NUMBER.findall(spec or "")]
    size = len(fmt) + _widths(numbers, limit) + len(fields) * _biggest(values, limit)
    _too_long("the formatted string", size, limit)


def check_binop(operator: str, left: Any, right: Any, limit: int) -> None:
    """Refuse `left <operator> right` when its result would be too big."""
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | bytes | list | tuple) and type(times) is int:
                _too_long(f"{type(seq).__name__} * {times}", len(seq) * times, limit)
                return
        if type(left) is int and type(right) is int:
            _int_bits(left.bit_length() + right.bit_length())
    elif operator == "**":
        if type(left) is int and type(right) is int and right > 0 and abs(left) > 1:
            _int_bits(right * abs(left).bit_length())
    elif operator == "+":
        if isinstance(left, str | bytes | list | tuple) and isinstance(right, type(left)):
            _too_long("the concatenation", len(left) + len(right), limit)
    elif operator == "%" and isinstance(left, str):
        check_printf(left, right, limit)


def _int_bits(bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise _security_error(f"the number would have over {MAX_INT_BITS:,} bits")


def _replace_size(text: str, old: str, new: str, count: int | None) -> int:
    found = len(text) + 1 if old == "" else text.count(old)
    if count is not None and count >= 0:
        found = min(found, count)
    return len(text) + found * (len(new) - len(old))


def _arg(args: tuple[Any, ...], kwargs: Mapping[str, Any], index: int, name: str) -> Any:
    return args[index] if len(args) > index else kwargs.get(name)


def _width_check(index: int, name: str) -> Callable[..., None]:
    def check(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], limit: int) -> None:
        width = _arg(args, kwargs, index, name)
        if type(width) is int:
            _too_long("the padded string", width, limit)

    return check


def _check_replace(
    value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], limit: int
) -> None:
    old, new = _arg(args, kwargs, 0, "old"), _arg(args, kwargs, 1, "new")
    count = _arg(args, kwargs, 2, "count")
    if isinstance(value, str) and isinstance(old, str) and isinstance(new, str):
        counted = count if type(count) is int else None
        _too_long("the replaced string", _replace_size(value, old, new, counted), limit)


def _check_expandtabs(
    value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], limit: int
) -> None:
    size = _arg(args, kwargs, 0, "tabsize")
    if isinstance(value, str) and type(size) is int:
        _too_long("the expanded string", len(value) + value.count("\t") * size, limit)


def _check_translate(
    value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], limit: int
) -> None:
    table = _arg(args, kwargs, 0, "table")
    if isinstance(value, str) and isinstance(table, Mapping):
        longest = max((len(v) for v in table.values() if isinstance(v, str)), default=1)
        _too_long("the translated string", len(value) * longest, limit)


def _check_to_bytes(
    value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], limit: int
) -> None:
    length = _arg(args, kwargs, 0, "length")
    if type(length) is int:
        _too_long("the bytes", length, limit)


#: Methods of str, bytes and int that can build a value much bigger than their input.
_METHOD_CHECKS: dict[str, Callable[..., None]] = {
    "center": _width_check(0, "width"),
    "ljust": _width_check(0, "width"),
    "rjust": _width_check(0, "width"),
    "zfill": _width_check(0, "width"),
    "expandtabs": _check_expandtabs,
    "replace": _check_replace,
    "translate": _check_translate,
    "to_bytes": _check_to_bytes,
}


def _count_check(index: int, name: str) -> Callable[..., None]:
    def check(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], limit: int) -> None:
        count = _arg(args, kwargs, index, name)
        if type(count) is int and count > MAX_COUNT:
            raise _security_error(f"{name} {count:,} is over the limit of {MAX_COUNT:,}")

    return check


def _check_indent(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], limit: int) -> None:
    width = _arg(args, kwargs, 0, "width")
    pad = width if type(width) is int else len(width) if isinstance(width, str) else 4
    if isinstance(value, str):
        _too_long("the indented string", len(value) + (value.count("\n") + 1) * pad, limit)


def _check_wordwrap(
    value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], limit: int
) -> None:
    wrap = _arg(args, kwargs, 2, "wrapstring")
    if isinstance(value, str) and isinstance(wrap, str):
        _too_long("the wrapped string", len(value) * (1 + len(wrap)), limit)


def _check_format_filter(
    value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], limit: int
) -> None:
    if isinstance(value, str):
        check_printf(value, kwargs or args, limit)


def _check_join(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], limit: int) -> None:
    separator = _arg(args, kwargs, 0, "d")
    if isinstance(value, _LISTS):
        extra = len(value) * len(separator) if isinstance(separator, str) else 0
        _too_long("the joined string", measure(value, limit) + extra, limit)


def _check_tojson(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], limit: int) -> None:
    indent = _arg(args, kwargs, 0, "indent")
    times = 1 + indent if type(indent) is int and indent > 0 else 1
    _too_long("the JSON text", measure(value, limit) * times, limit)


def _check_sum(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], limit: int) -> None:
    start = _arg(args, kwargs, 1, "start")
    if start is not None and not isinstance(start, int | float):
        raise _security_error("sum adds numbers only (its start must be a number)")


def _check_text(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], limit: int) -> None:
    if not isinstance(value, str):
        measure(value, limit)  # the filter works on the value's text


#: Filters that can build a value much bigger than their input, or turn it into text.
_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "center": _width_check(0, "width"),
    "indent": _check_indent,
    "wordwrap": _check_wordwrap,
    "format": _check_format_filter,
    "replace": _check_replace,
    "batch": _count_check(0, "linecount"),
    "slice": _count_check(0, "slices"),
    "join": _check_join,
    "tojson": _check_tojson,
    "sum": _check_sum,
    **{
        name: _check_text
        for name in (
            "string",
            "pprint",
            "e",
            "escape",
            "forceescape",
            "upper",
            "lower",
            "title",
            "capitalize",
            "trim",
            "striptags",
            "urlencode",
            "urlize",
            "truncate",
            "wordcount",
            "safe",
            "xmlattr",
        )
    },
}


def _guard_filter(fn: Callable[..., Any], check: Callable[..., None] | None, limit: int) -> Any:
    skip = 1 if getattr(fn, "jinja_pass_arg", None) is not None else 0

    def guarded(*args: Any, **kwargs: Any) -> Any:
        _charge()
        if check is not None and len(args) > skip:
            check(args[skip], args[skip + 1 :], kwargs, limit)
        result = fn(*args, **kwargs)
        if isinstance(result, str) and len(result) > limit:
            _too_long("the filtered value", len(result), limit)
        return result

    return update_wrapper(guarded, fn)  # keeps `jinja_pass_arg`: Jinja passes the same


def _safe_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_COUNT:
        raise _security_error(f"range of {len(numbers):,} items is over the limit of {MAX_COUNT:,}")
    _charge(1 + len(numbers) // 16)  # building is cheap; iterating is counted again
    return numbers


# -- the environment ---------------------------------------------------------------------


# The Guard's hooks: filters whose names a template cannot spell.
_ITERATE = "sire:iterate"
_EMIT = "sire:emit"
_CONCAT = "sire:concat"


@lru_cache(maxsize=4)
def environment(max_size: int = MAX_SIZE) -> Any:
    """The sandbox whose values and output are at most `max_size` characters long."""
    from jinja2 import StrictUndefined, Undefined, nodes, pass_eval_context
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from jinja2.utils import generate_lorem_ipsum
    from jinja2.visitor import NodeTransformer

    limit = max_size

    class Guard(NodeTransformer):
        """Counts loop iterations and macro calls, and routes `~` through a size check."""

        def visit_For(self, node: nodes.For) -> nodes.Node:
            self.generic_visit(node)
            node.iter = _hook(_ITERATE, node.iter)
            node.body.insert(0, _charge_text(node.body, node.lineno, 1))
            return node

        def visit_Macro(self, node: nodes.Macro) -> nodes.Node:
            self.generic_visit(node)
            node.body.insert(0, _charge_text(node.body, node.lineno, _MACRO_WORK))
            return node

        def visit_CallBlock(self, node: nodes.CallBlock) -> nodes.Node:
            self.generic_visit(node)
            node.body.insert(0, _charge_text(node.body, node.lineno, _MACRO_WORK))
            return node

        def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
            self.generic_visit(node)
            items = nodes.List(list(node.nodes), lineno=node.lineno)
            return _hook(_CONCAT, items)

    def _hook(name: str, value: Any, *args: nodes.Expr) -> nodes.Filter:
        # A filter compiles to a direct call; its name is one no template can write.
        return nodes.Filter(value, name, list(args), [], None, None, lineno=value.lineno)

    def _charge_text(body: list[nodes.Node], lineno: int, work: int) -> nodes.ExprStmt:
        # The body's own text is output on every pass, without going through finalize.
        text = sum(len(data.data) for n in body for data in n.find_all(nodes.TemplateData))
        size, cost = nodes.Const(text, lineno=lineno), nodes.Const(work, lineno=lineno)
        return nodes.ExprStmt(_hook(_EMIT, size, cost), lineno=lineno)

    @pass_eval_context  # needs the render: Jinja then never finalizes at compile time
    def finalize(eval_ctx: Any, value: Any) -> Any:
        if isinstance(value, str):
            _emit(len(value), limit)
        elif type(value) is int or isinstance(value, _SCALARS):
            _emit(24, limit)
        elif not isinstance(value, Undefined):  # shown as Jinja says: empty, or an error
            _emit(measure(value, limit), limit)
        return value

    def lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
        if n > 1000 or max > 10_000:
            raise _security_error("lipsum: at most 1,000 paragraphs of 10,000 words")
        return generate_lorem_ipsum(n, html, min, max)

    class Sandbox(ImmutableSandboxedEnvironment):
        """Mappings are read by key first: `output.items` is the key, not `dict.items`."""

        intercepted_binops = frozenset({"+", "*", "**", "%"})

        def getattr(self, obj: Any, attribute: str) -> Any:
            if type(obj) is dict:
                try:
                    return obj[attribute]
                except KeyError:
                    pass
            return super().getattr(obj, attribute)

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            _charge()
            check_binop(operator, left, right, limit)
            return super().call_binop(context, operator, left, right)

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            _charge()
            check = _METHOD_CHECKS.get(getattr(__obj, "__name__", ""))
            if check is not None and isinstance(
                getattr(__obj, "__self__", None), str | bytes | int
            ):
                check(__obj.__self__, args, kwargs, limit)
            if getattr(__obj, "__name__", "") == "join" and isinstance(
                getattr(__obj, "__self__", None), str
            ):
                items = list(args[0]) if args else []
                _too_long("the joined string", measure(items, limit), limit)
                args = (items, *args[1:])
            result = super().call(__context, __obj, *args, **kwargs)
            if isinstance(result, str | bytes | list) and len(result) > limit:
                _too_long("the result", len(result), limit)
            return result

        def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
            wrapper = super().wrap_str_format(value)
            if wrapper is None:
                return None
            fmt: str = value.__self__
            is_map = value.__name__ == "format_map"

            def guarded(*args: Any, **kwargs: Any) -> str:
                if is_map and len(args) == 1 and isinstance(args[0], Mapping):
                    check_format(fmt, (), args[0], limit)
                else:
                    check_format(fmt, args, kwargs, limit)
                return wrapper(*args, **kwargs)

            return update_wrapper(guarded, value)

        def _parse(self, source: str, name: str | None, filename: str | None) -> Any:
            return Guard().visit(super()._parse(source, name, filename))

    def iterate(iterable: Iterable[Any]) -> Iterator[Any]:
        for item in iterable:
            _charge()
            yield item

    def emit(size: int, work: int) -> str:
        _charge(work)
        _emit(size, limit)
        return ""

    def concat(parts: list[Any]) -> str:
        texts = [part if isinstance(part, str) else str(plain(part, limit)) for part in parts]
        _too_long("the concatenation", sum(map(len, texts)), limit)
        return "".join(texts)

    env = Sandbox(
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=finalize,
        optimized=False,  # constant folding would run operations before any check
    )
    env.globals["range"] = _safe_range
    env.globals["lipsum"] = lipsum
    env.filters = {
        name: _guard_filter(fn, _FILTER_CHECKS.get(name), limit) for name, fn in env.filters.items()
    }
    env.filters.update({_ITERATE: iterate, _EMIT: emit, _CONCAT: concat})
    return env
