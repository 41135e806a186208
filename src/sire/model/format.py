"""The workflow file format as pydantic models: validation with located errors, JSON Schema.

These models describe what a user may write. `sire.model.loader` validates a YAML
document with them and converts the result into the frozen values of
`sire.model.workflow`. `json_schema()` is what `sire workflow schema` prints.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from sire.model.durations import PATTERN as DURATION_PATTERN
from sire.model.durations import parse_duration
from sire.model.workflow import (
    DEFAULT_MAX_CONCURRENCY,
    STEP_ID_PATTERN,
    WORKFLOW_ID_PATTERN,
)

Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": DURATION_PATTERN},
                {"type": "number", "minimum": 0},
            ],
            "description": "A duration: 250ms, 30s, 5m, 1h, 1m30s, or a number of seconds.",
        }
    ),
]
StepId = Annotated[str, StringConstraints(pattern=STEP_ID_PATTERN)]
Template = Annotated[str, Field(description="A template: `{{ expression }}`.")]
JsonSchema = dict[str, Any]
RetryOn = Literal["error", "timeout", "transport"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RetryDoc(_Strict):
    """`retry:` on a step or in `defaults:`."""

    max_attempts: int = Field(3, ge=1, le=1000, description="Attempts in all, the first included.")
    initial_interval: Duration = Field(1.0, description="Wait before the second attempt.")
    backoff: float = Field(2.0, ge=1.0, description="Each wait is the previous one times this.")
    max_interval: Duration = Field(60.0, description="No wait is longer than this.")
    jitter: float = Field(0.0, ge=0.0, le=1.0, description="Random fraction taken off each wait.")
    retry_on: list[RetryOn] = Field(
        default_factory=lambda: list(get_args(RetryOn)),
        min_length=1,
        description="Failures worth another attempt: error (tool), timeout, transport.",
    )


class DefaultsDoc(_Strict):
    """`defaults:` applied to every step that does not say otherwise."""

    retry: RetryDoc | None = None
    timeout: Duration | None = None


class ServerDoc(_Strict):
    """A named MCP server: `url` (Streamable HTTP) or `command` (stdio)."""

    url: str | None = Field(None, pattern=r"^https?://", description="Streamable HTTP endpoint.")
    headers: dict[str, str] = Field(default_factory=dict, description="HTTP headers (templated).")
    command: list[str] | None = Field(
        None, min_length=1, description="stdio server command (templated)."
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="stdio server environment (templated)."
    )
    cwd: str | None = Field(None, description="stdio server working directory (templated).")

    @model_validator(mode="after")
    def _one_transport(self) -> ServerDoc:
        if (self.url is None) == (self.command is None):
            raise ValueError("a server needs exactly one of 'url' (HTTP) or 'command' (stdio)")
        return self


class StepDoc(_Strict):
    """One step of a workflow: a call of one tool."""

    id: StepId = Field(description="Unique step id; templates read its output as steps.<id>.")
    tool: str = Field(description="Tool URI, e.g. sire:local/echo or mcp:server#tool.")
    description: str = ""
    with_: dict[str, Any] | None = Field(
        None, alias="with", description="Tool arguments (templated)."
    )
    needs: list[StepId] = Field(default_factory=list, description="Steps that run before this.")
    needs_any: bool = Field(False, description="Run when at least one parent completed.")
    if_: Template | None = Field(None, alias="if", description="Skip the step when false.")
    for_each: Template | None = Field(None, description="Run once per item of this list.")
    max_concurrency: int | None = Field(None, ge=1, description="Items of for_each at once.")
    retry: RetryDoc | None = None
    timeout: Duration | None = None
    input_schema: JsonSchema | None = None
    output_schema: JsonSchema | None = None


class WorkflowDoc(_Strict):
    """A Sire workflow: a DAG of steps, each calling one tool over MCP."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        title="Sire workflow",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    id: Annotated[str, StringConstraints(pattern=WORKFLOW_ID_PATTERN)]
    description: str = ""
    inputs: dict[StepId, JsonSchema] = Field(
        default_factory=dict, description="A JSON Schema per input; `default` makes it optional."
    )
    servers: dict[str, ServerDoc] = Field(default_factory=dict)
    defaults: DefaultsDoc = Field(default_factory=DefaultsDoc)
    max_concurrency: int = Field(DEFAULT_MAX_CONCURRENCY, ge=1, description="Steps at once.")
    steps: list[StepDoc] = Field(min_length=1)
    outputs: dict[str, Any] | None = Field(None, description="Outputs (templated).")


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the workflow format."""
    return WorkflowDoc.model_json_schema(by_alias=True)
