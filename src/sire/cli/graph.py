"""A workflow's DAG as text, Mermaid or Graphviz dot (pure)."""

from __future__ import annotations

from sire.model.graph import layers
from sire.model.workflow import Workflow

FORMATS = ("text", "mermaid", "dot")


def render_graph(workflow: Workflow, fmt: str = "text") -> str:
    """Render `workflow`'s steps and dependencies in format `fmt` (one of FORMATS)."""
    return {"text": _text, "mermaid": _mermaid, "dot": _dot}[fmt](workflow)


def _text(workflow: Workflow) -> str:
    deps = {step.id: step.depends for step in workflow.steps}
    lines = [f"{workflow.id}: {len(workflow.steps)} steps"]
    width = max(len(step.id) for step in workflow.steps)
    for number, layer in enumerate(layers(deps), start=1):
        lines.append(f"layer {number}:")
        for step_id in layer:
            step = workflow.step(step_id)
            after = f"  <- {', '.join(step.depends)}" if step.depends else ""
            marks = "".join(
                f" [{mark}]"
                for mark, on in (
                    ("if", step.when),
                    ("for_each", step.for_each),
                    ("needs_any", step.needs_any),
                )
                if on
            )
            lines.append(f"  {step_id:<{width}}  {step.tool}{marks}{after}")
    return "\n".join(lines)


def _mermaid(workflow: Workflow) -> str:
    lines = ["flowchart TD"]
    for step in workflow.steps:
        label = f"{step.id}<br/>{step.tool}".replace('"', "#quot;")
        lines.append(f'  {step.id}["{label}"]')
    for step in workflow.steps:
        for parent in step.depends:
            lines.append(f"  {parent} --> {step.id}")
    return "\n".join(lines)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dot(workflow: Workflow) -> str:
    lines = [f"digraph {_quote(workflow.id)} {{", "  rankdir=TB;", "  node [shape=box];"]
    for step in workflow.steps:
        label = _quote(step.id)[:-1] + "\\n" + _quote(str(step.tool))[1:]
        lines.append(f"  {_quote(step.id)} [label={label}];")
    for step in workflow.steps:
        for parent in step.depends:
            lines.append(f"  {_quote(parent)} -> {_quote(step.id)};")
    lines.append("}")
    return "\n".join(lines)
