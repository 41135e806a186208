"""`sire run --dry-run`: print the plan of a run, and the contract check, calling no tool.

The plan comes from `sire.engine.plan` (pure), the check from `sire.cli.contract`; this
module only shows them, as text or as one JSON document. Nothing is stored: the store
is never opened, and no server is started unless `--online` asks for it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from sire.cli.common import emit_json
from sire.config import Config
from sire.dispatch.mux import DispatcherMux
from sire.engine.plan import Failed, Pending, Plan, StepPlan, build_plan
from sire.errors import DefinitionError
from sire.model.workflow import Workflow

#: In the text plan, a `for_each` shows this many items' parameters, then a count.
SHOWN_ITEMS = 5
#: In the text plan, a value longer than this is cut (`--json` has them whole).
SHOWN_CHARS = 160


def dry_run(
    workflow: Workflow,
    values: dict[str, Any],
    config: Config,
    mux: DispatcherMux,
    *,
    online: bool,
    as_json: bool,
    workspace: Path | None = None,
) -> int:
    """Print the plan of running `workflow` with `values`; 2 when it cannot run as planned.

    Raises:
        ConfigError: `online`, and a server could not be started, reached or listed.
    """
    from sire.cli.contract import check_contracts

    root = (workspace or Path.cwd()).resolve()
    plan = build_plan(workflow, values, config.template_env(), workspace=str(root))
    report = check_contracts(
        workflow, plan, config, mux, online=online, inputs=values, workspace=root
    )
    problems = (*plan.problems, *report.problems)
    if as_json:
        emit_json(plan_document(plan, report.checked, report.unchecked, problems, online))
    else:
        print(format_plan(plan, report.checked, report.unchecked))
        for problem in problems:
            print(f"sire: error: {problem}", file=sys.stderr)
    return 2 if problems else 0


# --- JSON -----------------------------------------------------------------------------


def plan_document(
    plan: Plan,
    checked: Mapping[str, str],
    unchecked: tuple[str, ...],
    problems: tuple[DefinitionError, ...],
    online: bool,
) -> dict[str, Any]:
    """The plan as one JSON document.

    A value not known before running appears as written, and its path is listed under
    `pending` with what it waits for (or under `failed` with why it fails).
    """
    pending: dict[str, list[str]] = {}
    failed: dict[str, str] = {}
    outputs = None if plan.outputs is None else _plain(plan.outputs, "outputs", pending, failed)
    return {
        "dry_run": True,
        "workflow_id": plan.workflow_id,
        "valid": not problems,
        "online": online,
        "inputs": _plain(dict(plan.inputs), "inputs", pending, failed),
        "order": list(plan.order),
        "layers": [list(layer) for layer in plan.layers],
        "steps": [_step_document(step, checked) for step in plan.steps],
        "outputs": outputs,
        "outputs_pending": {k: v for k, v in pending.items() if k.startswith("outputs")},
        "unchecked": list(unchecked),
        "errors": [
            {
                "message": str(p),
                "reason": p.reason,
                "file": p.file,
                "line": p.line,
                "path": p.path,
                "hint": p.hint,
            }
            for p in problems
        ],
    }


def _step_document(step: StepPlan, checked: Mapping[str, str]) -> dict[str, Any]:
    pending: dict[str, list[str]] = {}
    failed: dict[str, str] = {}
    document = {
        "id": step.id,
        "tool": step.tool,
        "layer": step.layer,
        "depends": list(step.depends),
        "skipped": step.skipped,
        "if": _plain(step.when, "if", pending, failed),
        "for_each": _plain(step.for_each, "for_each", pending, failed),
        "params": _plain(step.params, "params", pending, failed),
        "items": [_plain(p, f"items[{n}]", pending, failed) for n, p in enumerate(step.items)],
        "checked_on": checked.get(step.id),
        "pending": pending,
        "failed": failed,
    }
    return document


def _plain(value: Any, path: str, pending: dict[str, list[str]], failed: dict[str, str]) -> Any:
    """`value` as JSON data: pending and failing values as written, noted by path."""
    if isinstance(value, Pending):
        pending[path] = list(value.references)
        return value.template
    if isinstance(value, Failed):
        failed[path] = value.reason
        return value.template
    if isinstance(value, dict):
        return {k: _plain(v, f"{path}.{k}", pending, failed) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, f"{path}[{i}]", pending, failed) for i, v in enumerate(value)]
    return value


# --- text -----------------------------------------------------------------------------


def format_plan(plan: Plan, checked: Mapping[str, str], unchecked: tuple[str, ...]) -> str:
    """The plan for a terminal: layer by layer, each step's parameters, then the checks."""
    count = len(plan.steps)
    lines = [
        f"dry run of {plan.workflow_id}: {count} step{'s' if count != 1 else ''} in "
        f"{len(plan.layers)} layer{'s' if len(plan.layers) != 1 else ''}; "
        "no tool is called and nothing is stored"
    ]
    if plan.inputs:
        shown = ", ".join(f"{k}={_show(v)}" for k, v in plan.inputs.items())
        lines.append(f"inputs: {shown}")
    steps = {step.id: step for step in plan.steps}
    for number, layer in enumerate(plan.layers, 1):
        together = " run together" if len(layer) > 1 else ""
        lines += ["", f"layer {number}: {', '.join(layer)}{together}"]
        for step_id in layer:
            lines += _step_lines(steps[step_id])
    if plan.outputs is not None:
        lines += ["", "outputs"]
        lines += [f"  {key}: {shown}" for key, shown in _leaves(dict(plan.outputs), "")]
    lines += ["", *_check_lines(checked, unchecked)]
    return "\n".join(lines)


def _step_lines(step: StepPlan) -> list[str]:
    after = f"  after {', '.join(step.depends)}" if step.depends else ""
    skipped = f"  skipped: {step.skipped}" if step.skipped else ""
    lines = [f"  {step.id}  {step.tool}{after}{skipped}"]
    if step.when is not None:
        lines.append(f"    if: {_show(step.when)}")
    if step.for_each is not None and not step.items:
        lines.append(f"    for_each: {_show(step.for_each)}")
    if step.items:
        lines.append(f"    for_each: {len(step.items)} items")
        for number, params in enumerate(step.items[:SHOWN_ITEMS]):
            lines += _params_lines(params, f"    [{number}] ", "        ")
        if len(step.items) > SHOWN_ITEMS:
            lines.append(f"    … and {len(step.items) - SHOWN_ITEMS} more items")
    elif isinstance(step.params, Pending):
        waits = ", ".join(step.params.references)
        lines.append(f"    params: the inputs overlaid by the outputs of its parents ({waits})")
    elif step.params is not None:
        lines += _params_lines(step.params, "    ", "    ")
    return lines


def _params_lines(params: Any, first: str, rest: str) -> list[str]:
    leaves = list(_leaves(params, "")) if isinstance(params, dict) else [("", _show(params))]
    if not leaves:
        return [f"{first}(no parameters)"]
    return [
        f"{first if n == 0 else rest}{key}: {shown}" if key else f"{first}{shown}"
        for n, (key, shown) in enumerate(leaves)
    ]


def _leaves(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """`(path, shown)` for each value to show: mappings and unsettled lists are opened."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list) and any(isinstance(v, Pending | Failed | dict) for v in value):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}[{index}]")
    else:
        yield path, _show(value)


def _show(value: Any) -> str:
    if isinstance(value, Pending):
        waits = ", ".join(value.references) or "?"
        written = "" if value.template is None else " " + _cut(json.dumps(value.template))
        return f"pending ({waits}){written}"
    if isinstance(value, Failed):
        return f"fails: {value.reason}"
    return _cut(json.dumps(_plain(value, "", {}, {}), ensure_ascii=False, default=str))


def _cut(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def _check_lines(checked: Mapping[str, str], unchecked: tuple[str, ...]) -> list[str]:
    by_server: dict[str, list[str]] = {}
    for step_id, label in checked.items():
        by_server.setdefault(label, []).append(step_id)
    lines = []
    if by_server:
        against = "; ".join(f"{', '.join(ids)} against {label}" for label, ids in by_server.items())
        lines.append(f"checked: {against}")
    if unchecked:
        lines.append(
            f"not checked: {', '.join(unchecked)} (mcp: steps; --online starts or reaches "
            "their servers to check them)"
        )
    if not lines:
        lines.append("checked: no step calls a tool with published schemas")
    return lines
