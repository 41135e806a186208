"""The Python SDK: define a workflow in Python, get the same model and YAML as a workflow file.

    from sire.sdk import Input, Retry, Workflow
    from sire.sdk.tools import file_write, text_template

    wf = Workflow("greet-and-save", inputs={"name": Input(str, default="world")})
    greet = wf.step("greet", text_template(template=f"Hello, {wf.inputs.name}!"))
    save = wf.step(
        "save",
        file_write(path="out/greeting.txt", content=f"{greet.output.text}\\n"),
        retry=Retry(max_attempts=5),
        timeout="30s",
    )
    wf.outputs = {"greeting": greet.output.text, "path": save.output.path}

    wf.to_model()   # the sire.model.workflow.Workflow the YAML loader makes
    wf.to_yaml()    # the workflow file; `sire workflow compile module:wf` prints it

Expressions (`wf.inputs.name`, `greet.output.text`, `item`, `index`, `execution`,
`secrets`, `env`) write `{{ … }}` templates wherever a value goes, also inside
f-strings; the engine renders them when the workflow runs. Typed tool calls
(`sire.sdk.tools`) give outputs whose fields a type checker knows; a tool named by
URI (`wf.step("add", "mcp:calc#add", {"a": 1})`) has an open `Ref` output.
"""

from sire.sdk.refs import Expr, Fields, Ref, env, execution, expr, index, item, secrets
from sire.sdk.workflow import Call, Input, Items, Retry, Step, Workflow

__all__ = [
    "Call",
    "Expr",
    "Fields",
    "Input",
    "Items",
    "Ref",
    "Retry",
    "Step",
    "Workflow",
    "env",
    "execution",
    "expr",
    "index",
    "item",
    "secrets",
]
