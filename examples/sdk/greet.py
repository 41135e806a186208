"""examples/hello.yaml, written with the Python SDK.

    sire workflow compile examples/sdk/greet.py:workflow --output greet.yaml
    sire run greet.yaml -i name=Ada

Every value that reads another step or an input is an expression: it becomes a
`{{ … }}` template in the compiled YAML, also inside f-strings.
"""

from sire.sdk import Input, Retry, Workflow
from sire.sdk.tools import file_write, text_template

workflow = Workflow(
    "greet-and-save",
    description="Greets someone and saves the greeting.",
    inputs={"name": Input(str, default="world")},
)

greet = workflow.step("greet", text_template(template=f"Hello, {workflow.inputs.name}!"))
save = workflow.step(
    "save",
    file_write(path="out/greeting.txt", content=f"{greet.output.text}\n"),
    retry=Retry(max_attempts=5, initial_interval="1s", backoff=2.0, max_interval="1m"),
    timeout="30s",
)

workflow.outputs = {"greeting": greet.output.text, "path": save.output.path}
