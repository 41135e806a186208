"""The HTTP API's request and response bodies (pydantic): what its OpenAPI document shows."""

from __future__ import annotations

import math
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sire.model.execution import Execution, ExecutionStatus, StepStatus
from sire.model.workflow import Workflow
from sire.storage.base import AuditEntry, Token, WorkflowVersion

Role = Literal["viewer", "operator", "admin"]
#: ids and versions are bounded so that no request can overflow a store's integers
MAX_INT = 2**31 - 1


class _In(BaseModel):
    """A request body: unknown fields refused, every value one the store can keep."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _storable(self) -> Self:
        for name in type(self).model_fields:
            _check_json(getattr(self, name), name, depth=0)
        return self


class ErrorOut(BaseModel):
    """Every error: one sentence saying what is wrong and where."""

    error: str


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"
    version: str
    agent: Literal["off", "running", "stopped"]


class WorkflowIn(_In):
    definition: str = Field(description="The workflow's YAML text.")


class WorkflowVersionOut(BaseModel):
    workflow_id: str
    version: int
    workflow_hash: str
    created_at: float
    created_by: str | None

    @classmethod
    def of(cls, v: WorkflowVersion) -> WorkflowVersionOut:
        return cls(
            workflow_id=v.workflow_id,
            version=v.version,
            workflow_hash=v.workflow_hash,
            created_at=v.created_at,
            created_by=v.created_by,
        )


class GraphStepOut(BaseModel):
    """One node of a workflow's DAG: a step, the steps it waits for, how it runs."""

    id: str
    tool: str
    depends: list[str] = Field(description="Every step it waits for (`needs` and references).")
    for_each: bool = Field(description="It runs once per item of a list.")
    conditional: bool = Field(description="It has an `if:`.")

    @classmethod
    def graph(cls, workflow: Workflow) -> list[GraphStepOut]:
        return [
            cls(
                id=step.id,
                tool=str(step.tool),
                depends=list(step.depends),
                for_each=step.for_each is not None,
                conditional=step.when is not None,
            )
            for step in workflow.steps
        ]


class GraphOut(BaseModel):
    workflow_id: str
    workflow_hash: str
    steps: list[GraphStepOut]


class WorkflowOut(WorkflowVersionOut):
    definition: str
    inputs: dict[str, Any]
    steps: list[str]
    graph: list[GraphStepOut]


class WorkflowList(BaseModel):
    workflows: list[WorkflowVersionOut]


class ExecutionIn(_In):
    inputs: dict[str, Any] = Field(default_factory=dict, description="Input values by name.")
    version: int | None = Field(
        default=None, ge=1, le=MAX_INT, description="The workflow version [default: latest]."
    )


class StepOut(BaseModel):
    status: StepStatus
    attempts: int
    output: Any = None
    error: str | None = None
    next_attempt: float | None = None
    started_at: float | None = None
    finished_at: float | None = None


class ExecutionOut(BaseModel):
    execution_id: str
    workflow_id: str
    workflow_hash: str
    status: ExecutionStatus
    inputs: dict[str, Any]
    outputs: dict[str, Any] | None
    error: str | None
    workspace: str
    created_at: float
    updated_at: float
    steps: dict[str, StepOut] | None = Field(
        default=None, description="Each step's state, by step id (`id/index` for items)."
    )

    @classmethod
    def of(cls, e: Execution, *, steps: bool = True) -> ExecutionOut:
        """`e` as it may be shown: a stored output holding a secret shows it as `***`.

        An output kept in the artifact store shows as `{"$artifact": path, "bytes": n}`,
        `path` being where this API serves it (the store's own URI stays inside).
        """
        from sire.secrets.redact import shown

        def shown_output(value: Any) -> Any:
            return _artifact_link(e.id, value) or shown(value)

        return cls(
            execution_id=e.id,
            workflow_id=e.workflow_id,
            workflow_hash=e.workflow_hash,
            status=e.status,
            inputs=e.inputs,
            outputs=shown_output(e.outputs),
            error=e.error,
            workspace=e.workspace,
            created_at=e.created_at,
            updated_at=e.updated_at,
            steps={
                key: StepOut(
                    status=s.status,
                    attempts=s.attempts,
                    output=shown_output(s.output),
                    error=s.error,
                    next_attempt=s.next_attempt,
                    started_at=s.started_at,
                    finished_at=s.finished_at,
                )
                for key, s in e.step_states.items()
            }
            if steps
            else None,
        )


def _artifact_link(execution_id: str, value: Any) -> dict[str, Any] | None:
    from sire.artifacts import REF, digest_of, is_ref

    if not is_ref(value):
        return None
    path = f"/v1/executions/{execution_id}/artifacts/{digest_of(value)}"
    return {REF: path, "bytes": value["bytes"]}


class ExecutionList(BaseModel):
    executions: list[ExecutionOut]


class GrantOut(BaseModel):
    role: Role
    workflow_id: str | None = Field(description="None: every workflow.")


class MeOut(BaseModel):
    """Who the token is and what it may do: a client offers only what is allowed."""

    token_id: str
    name: str
    grants: list[GrantOut]
    expires_at: float | None


class TokenIn(_In):
    role: Role
    workflows: list[str] = Field(
        default_factory=list, max_length=100, description="Grant on these only [default: all]."
    )
    name: str | None = Field(default=None, max_length=200)
    expires_in: str | None = Field(
        default=None, description="A duration (30d, 12h); never expires when absent."
    )


class TokenOut(BaseModel):
    id: str
    name: str
    grants: list[GrantOut]
    status: Literal["active", "expired", "revoked"]
    created_at: float
    expires_at: float | None
    revoked_at: float | None

    @classmethod
    def of(cls, t: Token, status: str) -> TokenOut:
        return cls(
            id=t.id,
            name=t.name,
            grants=[GrantOut(role=g.role, workflow_id=g.workflow_id) for g in t.grants],
            status=status,
            created_at=t.created_at,
            expires_at=t.expires_at,
            revoked_at=t.revoked_at,
        )


class TokenCreated(TokenOut):
    token: str = Field(description="The token itself: shown this once, stored only hashed.")


class TokenList(BaseModel):
    tokens: list[TokenOut]


class AuditOut(BaseModel):
    seq: int
    at: float
    actor: str
    action: str
    target: str
    allowed: bool
    detail: dict[str, Any]

    @classmethod
    def of(cls, a: AuditEntry) -> AuditOut:
        return cls(
            seq=a.seq,
            at=a.at,
            actor=a.actor,
            action=a.action,
            target=a.target,
            allowed=a.allowed,
            detail=dict(a.detail),
        )


class AuditList(BaseModel):
    entries: list[AuditOut]


_MAX_DEPTH = 64


def _check_json(value: Any, where: str, depth: int) -> None:
    """Refuse what JSON cannot carry back (NaN, infinities, lone surrogates), absurd nesting."""
    if depth > _MAX_DEPTH:
        raise ValueError(f"{where} nests deeper than {_MAX_DEPTH} levels")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} holds {value}, which JSON cannot represent")
    if isinstance(value, str):
        _check_text(value, where)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, f"{where} (a key)")
            _check_json(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{where}[{index}]", depth + 1)


def _check_text(text: str, where: str) -> None:
    try:
        text.encode()
    except UnicodeEncodeError:
        raise ValueError(f"{where} is not valid Unicode (it holds a lone surrogate)") from None
