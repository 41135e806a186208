"""Plan-time contract check: every step against the schemas of the tool it calls.

Above: `sire workflow validate` and `sire run --dry-run` (`sire.cli.plan`). Below: the
tool listings, from the in-process built-in server and, with `--online`, from the MCP
servers of the workflow's `mcp:` steps (started or reached, listed, closed again).

For each step whose server's listing is known: its tool exists (else the closest name
is suggested); the parameters the plan knows match the tool's `inputSchema` (pending
ones are left out of the check); and each `steps.<id>.output.<field>` a template reads
is declared by the producing tool's `outputSchema` (or the step's `output_schema`).
Built-in tools are always checked: their schemas cost nothing to read. `jsonrpc:` and
plugin tools publish no schemas, so they are not checked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from sire.config import Config
from sire.dispatch.mux import DispatcherMux
from sire.engine.plan import Failed, Pending, Plan, StepPlan
from sire.errors import ConfigError, DefinitionError, SireError, ToolNotFoundError, did_you_mean
from sire.model import expressions
from sire.model.uri import ToolURI
from sire.model.workflow import Step, Workflow

BUILTIN = "sire:local"


class Tools(NamedTuple):
    """What one server lists: `label` names it in messages; `tools` by name, as MCP JSON."""

    label: str
    tools: Mapping[str, Mapping[str, Any]]


class Report(NamedTuple):
    """The outcome of a contract check.

    Attributes:
        problems: each a definition error located at the step or template at fault.
        checked: the steps whose tool was checked, with the server that listed it.
        unchecked: `mcp:` steps left unchecked (offline).
    """

    problems: tuple[DefinitionError, ...]
    checked: Mapping[str, str]
    unchecked: tuple[str, ...]


def server_key(tool: ToolURI) -> str | None:
    """The listing `tool` is checked against: `sire:local`, `mcp:<name or URL>`, or None."""
    if tool.scheme == "sire" and tool.target == "local":
        return BUILTIN
    if tool.scheme == "mcp":
        return f"mcp:{tool.target}"
    return None


def check_contracts(
    workflow: Workflow,
    plan: Plan,
    config: Config,
    mux: DispatcherMux,
    *,
    online: bool,
    inputs: Mapping[str, Any] | None = None,
    workspace: Path | None = None,
) -> Report:
    """List the tools the workflow's steps call (`mcp:` ones only `online`) and check them.

    `inputs` and `workspace` render the workflow's named servers, as a run would.

    Raises:
        ConfigError: online, a server could not be started, reached or listed.
    """
    listings: dict[str, Tools] = {}
    try:
        builtin = getattr(mux.resolve("sire"), "server", None)  # an InProcessDispatcher's
    except ToolNotFoundError:
        builtin = None
    if builtin is not None and hasattr(builtin, "list_tools"):
        listings[BUILTIN] = Tools(BUILTIN, {t["name"]: t for t in builtin.list_tools()})
    if online:
        listings.update(remote_listings(workflow, config, mux, inputs or {}, workspace))
    return check(workflow, plan, listings)


def remote_listings(
    workflow: Workflow,
    config: Config,
    mux: DispatcherMux,
    inputs: Mapping[str, Any],
    workspace: Path | None,
) -> dict[str, Tools]:
    """The tool listing of every MCP server the workflow's `mcp:` steps name.

    Raises:
        ConfigError: a server could not be started, reached or listed.
    """
    targets = sorted({step.tool.target for step in workflow.steps if step.tool.scheme == "mcp"})
    if not targets:
        return {}
    import asyncio

    from sire.dispatch.remote import RemoteDispatcher
    from sire.engine.engine import render_servers
    from sire.engine.templating import Secrets

    used = {name: spec for name, spec in workflow.servers.items() if name in targets}
    context = {
        "inputs": dict(inputs),
        "secrets": Secrets(),
        "env": config.template_env(),
        "execution": {
            "id": "",
            "workflow_id": workflow.id,
            "workspace": str((workspace or Path.cwd()).resolve()),
        },
    }
    try:
        servers = render_servers(used, context)
    except SireError as exc:
        raise ConfigError(f"cannot start the workflow's MCP servers to check it: {exc}") from None
    dispatcher = mux.resolve("mcp")
    remote = dispatcher if isinstance(dispatcher, RemoteDispatcher) else None

    async def fetch() -> list[list[dict[str, Any]] | BaseException]:
        client = remote or RemoteDispatcher(config.servers)
        try:
            return await asyncio.gather(
                *(client.list_tools(target, servers) for target in targets),
                return_exceptions=True,
            )
        finally:
            await client.aclose()

    listings: dict[str, Tools] = {}
    for target, result in zip(targets, asyncio.run(fetch()), strict=True):
        if isinstance(result, SireError):
            raise ConfigError(f"cannot check the workflow online: {result}") from None
        if isinstance(result, BaseException):
            raise result
        label = f"MCP server at {target}" if "://" in target else f"MCP server '{target}'"
        listings[f"mcp:{target}"] = Tools(label, {t["name"]: t for t in result})
    return listings


def check(workflow: Workflow, plan: Plan, listings: Mapping[str, Tools]) -> Report:
    """Check `plan`'s steps against `listings` (by `server_key`); pure."""
    problems: list[DefinitionError] = []
    checked: dict[str, str] = {}
    unchecked: list[str] = []
    described: dict[str, Mapping[str, Any]] = {}  # step id -> its tool, as listed
    for step, planned in zip(workflow.steps, plan.steps, strict=True):
        key = server_key(step.tool)
        listing = listings.get(key) if key is not None else None
        if listing is None:
            if step.tool.scheme == "mcp":
                unchecked.append(step.id)
            continue
        checked[step.id] = listing.label
        tool = listing.tools.get(step.tool.tool)
        if tool is None:
            problems.append(_unknown_tool(workflow, planned, step, listing))
            continue
        described[step.id] = tool
        problems += _check_arguments(workflow, planned, step, tool)
    problems += _check_output_reads(workflow, described)
    return Report(tuple(problems), checked, tuple(unchecked))


def _error(workflow: Workflow, reason: str, path: str, hint: str | None = None) -> DefinitionError:
    return DefinitionError(
        reason, file=workflow.source, line=workflow.line(path), path=path, hint=hint
    )


def _unknown_tool(
    workflow: Workflow, planned: StepPlan, step: Step, listing: Tools
) -> DefinitionError:
    names = sorted(listing.tools)
    shown = ", ".join(names[:10]) + (", …" if len(names) > 10 else "")
    return _error(
        workflow,
        f"{listing.label} has no tool '{step.tool.tool}' (tools: {shown or 'none'})",
        f"steps[{planned.position}].tool",
        did_you_mean(step.tool.tool, names),
    )


def _check_arguments(
    workflow: Workflow, planned: StepPlan, step: Step, tool: Mapping[str, Any]
) -> Iterator[DefinitionError]:
    """The first argument problem of each parameter set the plan knows (one per item)."""
    schema = tool.get("inputSchema")
    if not isinstance(schema, dict):
        return
    here = f"steps[{planned.position}]"
    sets = list(enumerate(planned.items)) if planned.items else [(None, planned.params)]
    for item, params in sets:
        if not isinstance(params, dict):
            continue  # a step without `with:` whose parents' outputs are not known yet
        relaxed, instance = _relax(schema, params)
        validate = _validator(json.dumps(relaxed, sort_keys=True, default=str), step.tool.tool)
        if validate is None:
            return
        try:
            validate(instance)
        except Exception as exc:  # fastjsonschema's JsonSchemaException
            from sire.dispatch.mcp.mapping import argument_problem

            name = str(getattr(exc, "name", "data"))
            base = f"{here}.with" if step.params is not None else here
            of = f" (item {item})" if item is not None else ""
            yield _error(
                workflow,
                f"the arguments of '{step.tool}'{of} do not match its inputSchema: "
                f"{argument_problem(exc)}",
                base + name.removeprefix("data"),
                _misspelt(params, schema.get("properties")),
            )
            return


def _misspelt(params: Mapping[str, Any], properties: Any) -> str | None:
    """`did you mean 'seconds' instead of 'secs'?` for a parameter the schema lacks."""
    if not isinstance(properties, Mapping):
        return None
    for key in params:
        if key not in properties:
            close = did_you_mean(key, [p for p in properties if p not in params])
            if close is not None:
                return close.removesuffix("?") + f" instead of '{key}'?"
    return None


def _relax(schema: Mapping[str, Any], params: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """`schema` and `params` with the parameters whose value is pending taken out of the check.

    A pending parameter the schema declares may hold anything; one it does not declare
    stays (as null) when extra parameters are forbidden, so that is still reported.
    """
    pending = {key for key, value in params.items() if _unsettled(value)}
    if not pending:
        return schema, dict(params)
    properties = dict(schema.get("properties") or {})
    instance = {key: value for key, value in params.items() if key not in pending}
    for key in pending:
        if key in properties:
            properties[key] = {}
            instance[key] = None
        elif schema.get("additionalProperties") is False:
            instance[key] = None
    relaxed = dict(schema, properties=properties)
    if isinstance(schema.get("required"), list):
        relaxed["required"] = [r for r in schema["required"] if r not in pending or r in instance]
    return relaxed, instance


def _unsettled(value: Any) -> bool:
    """Whether `value` holds anything not known before running (pending or failing)."""
    if isinstance(value, Pending | Failed):
        return True
    if isinstance(value, dict):
        return any(_unsettled(v) for v in value.values())
    if isinstance(value, list):
        return any(_unsettled(v) for v in value)
    return False


@lru_cache(maxsize=256)
def _validator(schema_json: str, tool: str) -> Any:
    from sire.dispatch.mcp.mapping import compile_arguments

    return compile_arguments(json.loads(schema_json), tool)


# --- steps.<id>.output.<field> reads ---------------------------------------------------


def _check_output_reads(
    workflow: Workflow, described: Mapping[str, Mapping[str, Any]]
) -> Iterator[DefinitionError]:
    steps = {step.id: step for step in workflow.steps}
    for where, text in _templates(workflow):
        for producer, fields in _output_reads(text):
            step = steps.get(producer)
            if step is None or not fields:
                continue
            tool = described.get(producer)
            schema = tool.get("outputSchema") if tool is not None else None
            if not isinstance(schema, dict):
                schema = step.output_schema
            if not isinstance(schema, Mapping):
                continue
            if step.for_each is not None:
                schema = {
                    "type": "object",
                    "properties": {"items": {"type": "array", "items": schema}},
                }
            missing = _undeclared(schema, fields)
            if missing is None:
                continue
            depth, known = missing
            read = "steps." + producer + ".output" + _format_path(fields[: depth + 1])
            field = str(fields[depth])
            yield _error(
                workflow,
                f"'{read}' reads '{field}', which the outputSchema of '{step.tool}' does not "
                f"declare (fields: {', '.join(known) or 'none'})",
                where,
                did_you_mean(field, known),
            )


def _templates(workflow: Workflow) -> Iterator[tuple[str, str]]:
    """Every template string of the workflow, with its path in the file."""
    for index, step in enumerate(workflow.steps):
        here = f"steps[{index}]"
        for key, value in (("with", step.params), ("if", step.when), ("for_each", step.for_each)):
            if value is not None:
                yield from expressions.strings(
                    dict(value) if isinstance(value, Mapping) else value, f"{here}.{key}"
                )
    if workflow.outputs is not None:
        yield from expressions.strings(dict(workflow.outputs), "outputs")


def _output_reads(text: str) -> list[tuple[str, tuple[str | int, ...]]]:
    """Each `steps.<id>.output.<path>` read by `text`: `(id, path)`, longest reads only."""
    chains: list[tuple[str | int, ...]] = []
    for chain in _chains(expressions.normalize(text)):
        if len(chain) >= 3 and chain[0] == "steps" and chain[2] == "output":
            chains.append(chain)
    longest = [c for c in chains if not any(o != c and o[: len(c)] == c for o in chains)]
    return [(str(c[1]), c[3:]) for c in dict.fromkeys(longest)]


@lru_cache(maxsize=1024)
def _chains(source: str) -> tuple[tuple[str | int, ...], ...]:
    """Every `name.attr[const]...` chain in a template, cut at its first dynamic key."""
    from jinja2 import Environment, nodes

    try:
        ast = Environment().parse(source)
    except Exception:  # the loader reports syntax errors; nothing to check here
        return ()
    found: list[tuple[str | int, ...]] = []
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        parts: list[str | int | None] = []
        current: Any = node
        while isinstance(current, nodes.Getattr | nodes.Getitem):
            if isinstance(current, nodes.Getattr):
                parts.append(current.attr)
            elif isinstance(current.arg, nodes.Const) and isinstance(current.arg.value, str | int):
                parts.append(current.arg.value)
            else:
                parts.append(None)
            current = current.node
        if not isinstance(current, nodes.Name):
            continue
        chain: list[str | int] = [current.name]
        for part in reversed(parts):
            if part is None:
                break
            chain.append(part)
        found.append(tuple(chain))
    return tuple(found)


def _undeclared(
    schema: Mapping[str, Any], fields: Iterable[str | int]
) -> tuple[int, list[str]] | None:
    """Where `fields` leaves what `schema` declares: `(depth, the fields declared there)`.

    A field is undeclared when the object schema lists `properties` without it and
    does not allow other properties explicitly (`additionalProperties: true` or a
    schema, or `patternProperties`). Anything the walk cannot follow (`anyOf`, `$ref`,
    untyped values) ends it with no finding; local `$ref`s (`#/$defs/...`) are followed.
    """
    node: Any = schema
    for depth, field in enumerate(fields):
        node = _dereference(node, schema)
        if not isinstance(node, Mapping):
            return None
        if isinstance(field, int):
            prefix = node.get("prefixItems")
            if isinstance(prefix, list) and 0 <= field < len(prefix):
                node = prefix[field]
            else:
                node = node.get("items")
            continue
        properties = node.get("properties")
        if not isinstance(properties, Mapping):
            return None
        if field in properties:
            node = properties[field]
            continue
        extra = node.get("additionalProperties")
        if (extra is not None and extra is not False) or node.get("patternProperties"):
            return None
        return depth, sorted(properties)
    return None


def _dereference(node: Any, root: Mapping[str, Any]) -> Any:
    """`node`, or what its local `$ref` points at (`#/$defs/TimeResult`); None if unknown."""
    for _ in range(32):  # a chain of references, never a loop
        ref = node.get("$ref") if isinstance(node, Mapping) else None
        if not isinstance(ref, str):
            return node
        if not ref.startswith("#"):
            return None
        node = root
        for part in filter(None, ref[1:].split("/")):
            key = part.replace("~1", "/").replace("~0", "~")
            node = node.get(key) if isinstance(node, Mapping) else None
    return None


def _format_path(fields: Iterable[str | int]) -> str:
    return "".join(f"[{f}]" if isinstance(f, int) else f".{f}" for f in fields)


def contract_problems(
    workflow: Workflow, config: Config, mux: DispatcherMux, *, online: bool
) -> tuple[DefinitionError, ...]:
    """`sire workflow validate`'s contract check: only what holds for any inputs.

    Every input counts as unknown (validation is not a run), so only the parameters
    written as constants are checked; servers render with the inputs' defaults.

    Raises:
        ConfigError: `online`, and a server could not be started, reached or listed.
    """
    from sire.engine.plan import build_plan

    plan = build_plan(workflow, {}, config.template_env())
    defaults = {name: s["default"] for name, s in workflow.inputs.items() if "default" in s}
    return check_contracts(workflow, plan, config, mux, online=online, inputs=defaults).problems
