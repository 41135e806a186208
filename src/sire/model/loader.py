"""YAML -> Workflow: parse keeping every node's line, validate, check the DAG, cache.

Errors are `DefinitionError`s carrying file, line and path (`steps[2].needs[0]`).
A validated workflow is cached by content hash under `$SIRE_HOME/cache`, so running
an unchanged file imports neither PyYAML's parser nor pydantic.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sire.errors import CycleError, DefinitionError, did_you_mean
from sire.model import expressions
from sire.model.graph import find_cycle
from sire.model.uri import ToolURI, URIError
from sire.model.workflow import RetryPolicy, ServerSpec, Step, Workflow

if TYPE_CHECKING:
    from pydantic import ValidationError

    from sire.model.format import RetryDoc, StepDoc, WorkflowDoc

MAX_NODES = 100_000
MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 100
_CACHE_FORMAT = "3"


def load_workflow(path: str | os.PathLike[str], *, cache_dir: Path | None = None) -> Workflow:
    """Load and validate the workflow file at `path`.

    Raises:
        DefinitionError: the file is missing, unreadable or not a valid workflow.
    """
    source = os.fspath(path)
    try:
        with open(source, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise DefinitionError("workflow file not found", file=source) from None
    except OSError as exc:
        raise DefinitionError(f"cannot read workflow file ({exc.strerror})", file=source) from None
    if len(data) > MAX_BYTES:
        raise DefinitionError(f"workflow file is larger than {MAX_BYTES} bytes", file=source)
    digest = hashlib.sha256(data).hexdigest()
    cached = _cache_path(cache_dir, digest)
    if cached is not None:
        workflow = _read_cache(cached)
        if workflow is not None:
            return _with_source(workflow, source)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DefinitionError(f"file is not UTF-8 (byte {exc.start})", file=source) from None
    workflow = parse_workflow(text, source=source, digest=digest)
    if cached is not None:
        _write_cache(cached, workflow)
    return workflow


def parse_workflow(text: str, *, source: str | None = None, digest: str | None = None) -> Workflow:
    """Validate workflow YAML `text`; `source` names it in errors.

    Raises:
        DefinitionError: `text` is not a valid workflow.
    """
    from pydantic import ValidationError

    from sire.model.format import WorkflowDoc

    data, lines = read_yaml(text, source=source)
    if not isinstance(data, dict):
        raise DefinitionError(
            "a workflow must be a mapping with 'id' and 'steps'",
            file=source,
            line=lines.get("", 1),
        )
    try:
        doc = WorkflowDoc.model_validate(data)
    except ValidationError as exc:
        raise _located(exc, lines, source) from None
    digest = digest or hashlib.sha256(text.encode()).hexdigest()
    try:
        workflow = _build(doc, data, lines, source, digest)
    except DefinitionError as exc:
        raise exc.located(source, _line(lines, exc.path)) from None
    return workflow._replace(text=text)


def read_yaml(text: str, *, source: str | None = None) -> tuple[Any, dict[str, int]]:
    """Parse one YAML document into plain data and the line of every node by path.

    Raises:
        DefinitionError: the YAML is malformed, has duplicate keys or is too large.
    """
    import yaml

    loader = None
    try:
        try:
            loader = _loader_class()(text)
            node = loader.get_single_node()
        except yaml.reader.ReaderError as exc:
            raise DefinitionError(
                f"invalid YAML: {_reader_reason(exc)}",
                file=source,
                line=_reader_line(exc, text),
            ) from None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            reason = exc.problem or exc.context or "malformed YAML"
            raise DefinitionError(f"invalid YAML: {reason}", file=source, line=line) from None
        except yaml.YAMLError as exc:
            raise DefinitionError(f"invalid YAML: {_first_line(exc)}", file=source) from None
        except UnicodeEncodeError as exc:  # only a `str` from a caller can hold a lone surrogate
            raise DefinitionError(
                "the text is not valid Unicode (it holds a lone surrogate)",
                file=source,
                line=text.count("\n", 0, exc.start) + 1,
            ) from None
        if node is None:
            raise DefinitionError("the file is empty", file=source, line=1)
        lines: dict[str, int] = {}
        data = _Converter(loader, source).convert(node, "", 0, lines)
        return data, lines
    finally:
        if loader is not None:
            loader.dispose()


def _first_line(exc: BaseException) -> str:
    """The first line of a message that PyYAML may spread over several."""
    return next(iter(str(exc).splitlines()), "") or type(exc).__name__


def _reader_reason(exc: Any) -> str:
    if isinstance(exc.character, int):
        return f"unacceptable character #x{exc.character:04x} ({exc.reason})"
    return str(exc.reason)


def _reader_line(exc: Any, text: str) -> int:
    # The pure-Python reader counts characters of the text; libyaml counts its UTF-8 bytes.
    if exc.encoding == "unicode":
        return text.count("\n", 0, exc.position) + 1
    return text.encode("utf-8", "surrogatepass").count(b"\n", 0, exc.position) + 1


@lru_cache(maxsize=1)
def _loader_class() -> Any:
    """PyYAML's safe loader with YAML 1.2 booleans: only true/false, so `on:` is a key."""
    import re

    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    resolvers = {
        first: [(tag, rx) for tag, rx in entries if tag != "tag:yaml.org,2002:bool"]
        for first, entries in base.yaml_implicit_resolvers.items()
    }
    loader: Any = type("SireLoader", (base,), {"yaml_implicit_resolvers": resolvers})
    loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool",
        re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"),
    )
    return loader


_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Converter:
    """Composed YAML nodes -> plain data, noting the line of every node by path.

    Bounded against hostile input: at most `MAX_NODES` conversions (aliases expand),
    `MAX_DEPTH` levels, and no collection that contains itself through an alias.
    """

    def __init__(self, loader: Any, source: str | None) -> None:
        import yaml

        self.loader = loader
        self.source = source
        self.mapping_node = yaml.MappingNode
        self.sequence_node = yaml.SequenceNode
        self.budget = MAX_NODES
        self.active: set[int] = set()  # ids of the collections being converted

    def error(self, reason: str, node: Any, path: str) -> DefinitionError:
        return DefinitionError(reason, file=self.source, line=node.start_mark.line + 1, path=path)

    def convert(self, node: Any, path: str, depth: int, lines: dict[str, int]) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise DefinitionError(
                f"document has more than {MAX_NODES} nodes (an alias bomb?)",
                file=self.source,
                line=node.start_mark.line + 1,
            )
        lines.setdefault(path, node.start_mark.line + 1)
        is_mapping = isinstance(node, self.mapping_node)
        if not is_mapping and not isinstance(node, self.sequence_node):
            return self.scalar(node, path)
        if id(node) in self.active:
            raise self.error("recursive alias: a collection contains itself", node, path)
        if depth >= MAX_DEPTH:
            raise self.error(f"the document is nested deeper than {MAX_DEPTH} levels", node, path)
        self.active.add(id(node))
        try:
            if is_mapping:
                return self.mapping(node, path, depth, lines)
            return [
                self.convert(item, f"{path}[{i}]", depth + 1, lines)
                for i, item in enumerate(node.value)
            ]
        finally:
            self.active.discard(id(node))

    def mapping(self, node: Any, path: str, depth: int, lines: dict[str, int]) -> dict[str, Any]:
        own: dict[str, Any] = {}
        merges: list[Any] | None = None
        for key_node, value_node in node.value:
            if isinstance(key_node, self.mapping_node | self.sequence_node):
                raise self.error("mapping keys must be plain strings", key_node, path)
            key = key_node.value
            child = f"{path}.{key}" if path else key
            if key in own or (key_node.tag == _MERGE_TAG and merges is not None):
                raise self.error(f"duplicate key '{key}'", key_node, child)
            if key_node.tag == _MERGE_TAG:
                merges = self.merge_sources(value_node, child)
                continue
            lines[child] = key_node.start_mark.line + 1
            own[key] = self.convert(value_node, child, depth + 1, lines)
        if not merges:
            return own
        # YAML merge keys: the mapping's own keys override merged ones, and a mapping
        # earlier in a `<<: [*a, *b]` list overrides a later one.
        merged: dict[str, Any] = {}
        for source in merges:
            source_lines: dict[str, int] = {}
            data = self.convert(source, path, depth + 1, source_lines)
            for key, value in data.items():
                if key in own or key in merged:
                    continue
                merged[key] = value
                child = f"{path}.{key}" if path else key
                for where, line in source_lines.items():
                    if where == child or where.startswith((f"{child}.", f"{child}[")):
                        lines.setdefault(where, line)
        return {**merged, **own}

    def merge_sources(self, node: Any, path: str) -> list[Any]:
        sources = list(node.value) if isinstance(node, self.sequence_node) else [node]
        for source in sources:
            if not isinstance(source, self.mapping_node):
                raise self.error("'<<' must merge a mapping or a list of mappings", source, path)
        return sources

    def scalar(self, node: Any, path: str) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except Exception as exc:  # hostile input: whatever a constructor raises is the file's fault
            problem = getattr(exc, "problem", None)
            if not problem:
                tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
                problem = f"{_shorten(str(node.value))} is not a valid {tag}"
            raise self.error(f"invalid YAML value: {problem}", node, path) from None


def _shorten(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def format_loc(loc: tuple[int | str, ...]) -> str:
    """`('steps', 2, 'needs', 0)` -> `steps[2].needs[0]`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _line(lines: Mapping[str, int], path: str) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return lines.get("")


def _located(exc: ValidationError, lines: Mapping[str, int], source: str | None) -> DefinitionError:
    # A misspelt field shows up twice (unknown + missing): the unknown one says more.
    errors = sorted(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and "[" in p))
    path = format_loc(loc)
    kind = first["type"]
    hint = None
    if kind == "missing":
        reason = f"missing required field '{loc[-1]}'"
        path = format_loc(loc[:-1])
    elif kind == "extra_forbidden":
        reason = f"unknown field '{loc[-1]}'"
        hint = did_you_mean(str(loc[-1]), _known_fields(loc[:-1]))
    elif kind == "string_pattern_mismatch" and loc and loc[-1] == "id":
        reason = (
            f"invalid id {first['input']!r} (letters, digits and '_', not starting with a digit)"
        )
        if len(loc) == 1:
            reason = f"invalid workflow id {first['input']!r} (lowercase letters, digits, '_.-')"
    else:
        message = str(first["msg"]).removeprefix("Value error, ")
        reason = message[:1].lower() + message[1:]
    more = len(errors) - 1
    if more:
        reason += f" (and {more} more error{'s' if more > 1 else ''})"
    line = lines.get(format_loc(loc)) if kind != "missing" else None
    return DefinitionError(
        reason, file=source, line=line or _line(lines, path), path=path, hint=hint
    )


def _known_fields(loc: tuple[int | str, ...]) -> list[str]:
    """The keys the format allows in the mapping at `loc` (`('steps', 1)`: a step's keys)."""
    from types import UnionType
    from typing import Union, get_args, get_origin

    from pydantic import BaseModel

    from sire.model.format import WorkflowDoc

    node: Any = WorkflowDoc
    for part in loc:
        if isinstance(node, type) and issubclass(node, BaseModel):
            field = next(
                (f for name, f in node.model_fields.items() if part in (name, f.alias)), None
            )
            node = None if field is None else field.annotation
        else:
            args = get_args(node)
            node = args[-1] if get_origin(node) in (list, dict) and args else None
        while get_origin(node) in (Union, UnionType):  # `RetryDoc | None`
            node = next(a for a in get_args(node) if a is not type(None))
        if node is None:
            return []
    if isinstance(node, type) and issubclass(node, BaseModel):
        return [f.alias or name for name, f in node.model_fields.items()]
    return []


def _retry(doc: RetryDoc | None, default: RetryPolicy) -> RetryPolicy:
    if doc is None:
        return default
    return RetryPolicy(
        max_attempts=doc.max_attempts,
        initial_interval=doc.initial_interval,
        backoff=doc.backoff,
        max_interval=doc.max_interval,
        jitter=doc.jitter,
        retry_on=frozenset(doc.retry_on),
    )


def _build(
    doc: WorkflowDoc,
    data: dict[str, Any],
    lines: Mapping[str, int],
    source: str | None,
    digest: str,
) -> Workflow:
    ids: dict[str, int] = {}
    for index, step in enumerate(doc.steps):
        if step.id in ids:
            raise DefinitionError(
                f"duplicate step id '{step.id}' (first used by steps[{ids[step.id]}])",
                path=f"steps[{index}].id",
            )
        ids[step.id] = index
    _check_schemas(doc)
    default_retry = _retry(doc.defaults.retry, RetryPolicy())
    steps = tuple(
        _build_step(i, s, ids, doc, default_retry, data["steps"][i])
        for i, s in enumerate(doc.steps)
    )
    deps = {step.id: step.depends for step in steps}
    cycle = find_cycle(deps)
    if cycle:
        raise CycleError(cycle, path=f"steps[{ids[cycle[0]]}]")
    if doc.outputs is not None:
        _references(doc.outputs, "outputs", ids, doc, for_each=False)
    return Workflow(
        id=doc.id,
        steps=steps,
        description=doc.description,
        inputs=doc.inputs,
        servers={
            name: ServerSpec(
                url=s.url,
                headers=s.headers,
                command=tuple(s.command or ()),
                env=s.env,
                cwd=s.cwd,
            )
            for name, s in doc.servers.items()
        },
        outputs=doc.outputs,
        max_concurrency=doc.max_concurrency,
        digest=digest,
        source=source,
        lines=dict(lines),
    )


def _check_schemas(doc: WorkflowDoc) -> None:
    """Every JSON Schema the workflow declares compiles, and refers to no other document."""
    for name, schema in doc.inputs.items():
        _check_schema(schema, f"input '{name}' has an invalid JSON Schema", f"inputs.{name}")
    for index, step in enumerate(doc.steps):
        for field in ("input_schema", "output_schema"):
            schema = getattr(step, field)
            if schema is not None:
                what = f"step '{step.id}' has an invalid {field}"
                _check_schema(schema, what, f"steps[{index}].{field}")


def _check_schema(schema: dict[str, Any], what: str, path: str) -> None:
    import json
    import re

    import fastjsonschema

    # Compiling would fetch a remote $ref: loading a workflow must not touch the network.
    if re.search(r'"\$ref":\s*"(?!#)', json.dumps(schema)):
        reason = "a $ref to another document is not supported; use #/definitions/..."
        raise DefinitionError(f"{what} ({reason})", path=path)
    try:
        fastjsonschema.compile(schema)
    except Exception as exc:  # a definition error, or a TypeError on a malformed schema
        reason = str(exc) or type(exc).__name__
        raise DefinitionError(f"{what} ({reason})", path=path) from None


def _build_step(
    index: int,
    step: StepDoc,
    ids: Mapping[str, int],
    doc: WorkflowDoc,
    default_retry: RetryPolicy,
    raw: dict[str, Any],
) -> Step:
    here = f"steps[{index}]"
    try:
        tool = ToolURI.parse(step.tool)
    except URIError as exc:
        raise DefinitionError(str(exc), path=f"{here}.tool") from None
    for n, need in enumerate(step.needs):
        if need not in ids:
            raise DefinitionError(
                f"unknown step '{need}' in needs",
                path=f"{here}.needs[{n}]",
                hint=did_you_mean(need, ids),
            )
        if need == step.id:
            raise DefinitionError("a step cannot need itself", path=f"{here}.needs[{n}]")
    refs: list[str] = []
    for key in ("with", "if", "for_each"):
        if raw.get(key) is not None:
            per_item = key == "with" and step.for_each is not None
            refs += _references(raw[key], f"{here}.{key}", ids, doc, per_item)
    for ref in refs:
        if ref == step.id:
            raise DefinitionError(f"step '{step.id}' reads its own output", path=here)
    if step.max_concurrency is not None and step.for_each is None:
        raise DefinitionError("max_concurrency on a step needs for_each", path=f"{here}")
    return Step(
        id=step.id,
        tool=tool,
        params=step.with_,
        needs=tuple(step.needs),
        depends=tuple(dict.fromkeys([*step.needs, *sorted(set(refs), key=ids.__getitem__)])),
        needs_any=step.needs_any,
        when=step.if_,
        for_each=step.for_each,
        max_concurrency=step.max_concurrency,
        retry=_retry(step.retry, default_retry),
        timeout=step.timeout if step.timeout is not None else doc.defaults.timeout,
        input_schema=step.input_schema,
        output_schema=step.output_schema,
        description=step.description,
    )


def _references(
    value: object, path: str, ids: Mapping[str, int], doc: WorkflowDoc, for_each: bool
) -> list[str]:
    """Check every template under `value`; return the step ids they read."""
    allowed = expressions.CONTEXT_NAMES | (expressions.ITEM_NAMES if for_each else frozenset())
    found: list[str] = []
    for where, text in expressions.strings(value, path):
        try:
            refs = expressions.references(expressions.normalize(text))
        except expressions.TemplateSyntaxError as exc:
            raise DefinitionError(str(exc), path=where) from None
        unknown = sorted(refs.names - allowed)
        if unknown:
            raise DefinitionError(
                f"unknown name '{unknown[0]}' in template (known: {', '.join(sorted(allowed))})",
                path=where,
                hint=did_you_mean(unknown[0], allowed),
            )
        for step_id in sorted(refs.steps):
            if step_id not in ids:
                raise DefinitionError(
                    f"template reads unknown step '{step_id}'",
                    path=where,
                    hint=did_you_mean(step_id, ids),
                )
        for name in sorted(refs.inputs):
            if name not in doc.inputs:
                raise DefinitionError(
                    f"template reads undeclared input '{name}'",
                    path=where,
                    hint=did_you_mean(name, doc.inputs),
                )
        found += refs.steps
    return found


def _cache_path(cache_dir: Path | None, digest: str) -> Path | None:
    if cache_dir is None:
        return None
    from sire import __version__

    return cache_dir / f"{digest}-{__version__}-{_CACHE_FORMAT}.pickle"


def _read_cache(path: Path) -> Workflow | None:
    try:
        with open(path, "rb") as f:
            workflow = pickle.load(f)
    except Exception:  # a missing, stale or corrupt cache entry is only a miss
        return None
    return workflow if isinstance(workflow, Workflow) else None


def _write_cache(path: Path, workflow: Workflow) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            pickle.dump(workflow, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:  # a read-only or full $SIRE_HOME only costs the next start its speed
        with contextlib.suppress(OSError):  # e.g. the cache directory is a file
            tmp.unlink(missing_ok=True)


def _with_source(workflow: Workflow, source: str) -> Workflow:
    if workflow.source == source:
        return workflow
    return workflow._replace(source=source)
