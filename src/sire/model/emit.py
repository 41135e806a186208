"""Workflow -> YAML: the canonical text of a validated workflow, which loads back to it.

`emit_workflow(w)` writes what `sire.model.loader.parse_workflow` reads:
`parse_workflow(emit_workflow(w))` equals `w` in every field but the ones about its
source (`text`, `digest`, `source`, `lines`), so emitting is stable after one round.
The loader folds `defaults:` into each step; the emitter writes a retry policy or a
timeout back under `defaults:` only when every step (two or more) shares it. Comments
and the original spelling (`1m` or `60`, flow or block style) are not kept.

The Python SDK (`sire.sdk`) compiles through here, and so does `sire workflow compile`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, TypeVar

from sire.model.durations import parse_duration
from sire.model.workflow import (
    DEFAULT_MAX_CONCURRENCY,
    NO_RETRY,
    RetryPolicy,
    ServerSpec,
    Step,
    Workflow,
)

#: Flow style (`{a: 1, b: [2]}`) for data no longer than this, rendered compactly.
FLOW_WIDTH = 72
_RETRY_ON = ("error", "timeout", "transport")  # the order the format lists them in
_T = TypeVar("_T")


def emit_workflow(workflow: Workflow) -> str:
    """The YAML text of `workflow`, in the format's canonical key order."""
    return dump_yaml(workflow_document(workflow))


def workflow_document(workflow: Workflow) -> dict[str, Any]:
    """`workflow` as the plain data of a workflow file (keys in reading order)."""
    doc = _Block(id=workflow.id)
    if workflow.description:
        doc["description"] = workflow.description
    if workflow.inputs:
        doc["inputs"] = _Block({name: dict(s) for name, s in workflow.inputs.items()})
    if workflow.servers:
        doc["servers"] = _Block({n: _server(s) for n, s in workflow.servers.items()})
    retry = _common(s.retry for s in workflow.steps)
    if retry == NO_RETRY:
        retry = None
    timeouts = [s.timeout for s in workflow.steps]
    # A step cannot say "no timeout" under `defaults.timeout`, so all must have one.
    timeout = _common(timeouts) if None not in timeouts else None
    defaults: dict[str, Any] = {}
    if retry is not None:
        defaults["retry"] = _retry(retry)
    if timeout is not None:
        defaults["timeout"] = duration_value(timeout)
    if defaults:
        doc["defaults"] = _Block(defaults)
    if workflow.max_concurrency != DEFAULT_MAX_CONCURRENCY:
        doc["max_concurrency"] = workflow.max_concurrency
    doc["steps"] = _BlockList(
        _step(s, default_retry=retry or NO_RETRY, default_timeout=timeout) for s in workflow.steps
    )
    if workflow.outputs is not None:
        doc["outputs"] = _Block(workflow.outputs)
    return doc


def duration_value(seconds: float) -> str | float:
    """`seconds` the way a person writes it (`250ms`, `30s`, `1m30s`), when that is exact.

    Falls back to the number itself when no such string reads back as the same float.
    """
    text = _duration_text(seconds)
    if text is not None and parse_duration(text) == seconds:
        return text
    return seconds


def _duration_text(seconds: float) -> str | None:
    if seconds == int(seconds):
        whole = int(seconds)
        hours, rest = divmod(whole, 3600)
        minutes, secs = divmod(rest, 60)
        parts = [f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n]
        return "".join(parts) or "0s"
    millis = seconds * 1000
    if millis == int(millis):
        return f"{int(millis)}ms"
    return None


def _common(values: Iterable[_T]) -> _T | None:
    """The value most steps share (the first on a tie), when two or more share it."""
    counts = Counter(values)
    if not counts:
        return None
    value, count = counts.most_common(1)[0]
    return value if count >= 2 else None


def _step(
    step: Step, *, default_retry: RetryPolicy, default_timeout: float | None
) -> dict[str, Any]:
    out = _Block(id=step.id)
    if step.description:
        out["description"] = step.description
    out["tool"] = str(step.tool)
    if step.needs:
        out["needs"] = list(step.needs)
    if step.needs_any:
        out["needs_any"] = True
    if step.when is not None:
        out["if"] = step.when
    if step.for_each is not None:
        out["for_each"] = step.for_each
    if step.max_concurrency is not None:
        out["max_concurrency"] = step.max_concurrency
    if step.params is not None:
        out["with"] = dict(step.params)
    if step.input_schema is not None:
        out["input_schema"] = dict(step.input_schema)
    if step.output_schema is not None:
        out["output_schema"] = dict(step.output_schema)
    if step.retry != default_retry:
        out["retry"] = _retry(step.retry)
    if step.timeout != default_timeout:
        assert step.timeout is not None  # None is never a step's value under a default
        out["timeout"] = duration_value(step.timeout)
    return out


def _retry(policy: RetryPolicy) -> dict[str, Any]:
    if policy == NO_RETRY:
        return {"max_attempts": 1}  # a step opting out of `defaults.retry`
    # The format's own defaults differ from the model's (3 attempts, not 1), so the
    # first four fields are always written: the policy reads whole, as people write it.
    out: dict[str, Any] = {
        "max_attempts": policy.max_attempts,
        "initial_interval": duration_value(policy.initial_interval),
        "backoff": policy.backoff,
        "max_interval": duration_value(policy.max_interval),
    }
    if policy.jitter:
        out["jitter"] = policy.jitter
    if policy.retry_on != frozenset(_RETRY_ON):
        out["retry_on"] = [kind for kind in _RETRY_ON if kind in policy.retry_on]
    return out


def _server(server: ServerSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if server.url is not None:
        out["url"] = server.url
    if server.headers:
        out["headers"] = dict(server.headers)
    if server.command:
        out["command"] = list(server.command)
    if server.env:
        out["env"] = dict(server.env)
    if server.cwd is not None:
        out["cwd"] = server.cwd
    return out


class _Block(dict[str, Any]):
    """A mapping always written in block style: the document's own structure."""


class _BlockList(list[Any]):
    """A list always written in block style: the steps."""


def dump_yaml(data: Any) -> str:
    """`data` as YAML in Sire's style: block structure, short leaves in flow style,
    templates double-quoted, multi-line text as literal blocks, no anchors, no folding.
    """
    import yaml

    text: str = yaml.dump(
        data,
        Dumper=_dumper_class(),
        sort_keys=False,
        allow_unicode=True,
        width=1 << 20,  # never fold a long string across lines
    )
    return text


@lru_cache(maxsize=1)
def _dumper_class() -> Any:
    import yaml

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True  # shared objects (YAML merge keys, SDK reuse) are written out in full

        def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
            # Indent list items under their key, as the examples do.
            super().increase_indent(flow, False)

    def represent_str(dumper: Any, value: str) -> Any:
        style = None
        if "\n" in value.rstrip("\n"):
            style = "|"  # the emitter falls back to quotes where a block cannot hold it
        elif "\n" in value or "{{" in value or "{%" in value:
            style = '"'
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    def represent_block(dumper: Any, value: Mapping[str, Any]) -> Any:
        return dumper.represent_mapping("tag:yaml.org,2002:map", value, flow_style=False)

    def represent_block_list(dumper: Any, value: list[Any]) -> Any:
        return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=False)

    def represent_dict(dumper: Any, value: Mapping[str, Any]) -> Any:
        return dumper.represent_mapping("tag:yaml.org,2002:map", value, flow_style=_flow(value))

    def represent_list(dumper: Any, value: Sequence[Any]) -> Any:
        return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=_flow(value))

    Dumper.add_representer(str, represent_str)
    Dumper.add_representer(_Block, represent_block)
    Dumper.add_representer(_BlockList, represent_block_list)
    Dumper.add_representer(dict, represent_dict)
    Dumper.add_representer(list, represent_list)
    Dumper.add_representer(tuple, represent_list)
    return Dumper


def _flow(value: Any) -> bool:
    """Whether a collection reads best on one line: short, with no line break in its text."""
    import yaml

    if _has_block_text(value):
        return False
    try:
        text: str = yaml.dump(
            value, Dumper=_flow_dumper_class(), default_flow_style=True, width=1 << 20
        )
    except RecursionError:  # a structure too deep to measure is not short
        return False
    return len(text) <= FLOW_WIDTH + 1 and text.count("\n") == 1


def _has_block_text(value: Any) -> bool:
    """Whether `value` holds text of several lines, which reads best as a literal block."""
    if isinstance(value, str):
        return "\n" in value.rstrip("\n")
    if isinstance(value, Mapping):
        return any(_has_block_text(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_block_text(v) for v in value)
    return False


@lru_cache(maxsize=1)
def _flow_dumper_class() -> Any:
    """A dumper writing everything on one line, to measure a collection as a flow."""
    import yaml

    class FlowDumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    def represent_str(dumper: Any, value: str) -> Any:
        style = '"' if "\n" in value or "{{" in value or "{%" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    FlowDumper.add_representer(str, represent_str)
    FlowDumper.add_representer(tuple, yaml.SafeDumper.represent_list)
    return FlowDumper
