"""The HTTP API's routes under /v1: workflows, executions and their events, tokens, audit.

Each route authenticates and audits through `Api.call`, asks `Call.require` for the
role it needs on the workflow concerned, and speaks to the Store; executions are
created `pending` (as `sire run --detach` does) for an agent to drive.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sire.errors import InputError, InvalidTransitionError, NotFoundError
from sire.model.execution import ExecutionStatus
from sire.server.app import Api
from sire.server.auth import mint, token_status, visible_workflows
from sire.server.models import (
    MAX_INT,
    AuditList,
    AuditOut,
    ErrorOut,
    ExecutionIn,
    ExecutionList,
    ExecutionOut,
    GrantOut,
    GraphOut,
    GraphStepOut,
    HealthOut,
    MeOut,
    TokenCreated,
    TokenIn,
    TokenList,
    TokenOut,
    WorkflowIn,
    WorkflowList,
    WorkflowOut,
    WorkflowVersionOut,
)

router = APIRouter(prefix="/v1")
_bearer = HTTPBearer(auto_error=False, description="An API token: `sire_<id>_<secret>`.")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]

_WHY = {
    400: "The request is invalid (body, parameters, definition or inputs).",
    401: "No API token, or one that is malformed, unknown, expired or revoked.",
    403: "The token lacks the role this needs on this workflow.",
    404: "No such workflow, version, execution or token.",
    409: "The execution's state does not allow this.",
    413: "The request body is over the size limit.",
    503: "The store is unavailable.",
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorOut, "description": _WHY[code]} for code in (*codes, 503)}


def _api(request: Request) -> Api:
    api: Api = request.app.state.api
    return api


ApiDep = Annotated[Api, Depends(_api)]


def _text(bearer: HTTPAuthorizationCredentials | None) -> str | None:
    return None if bearer is None else bearer.credentials


@router.get("/health", response_model=HealthOut, responses=_errors(), tags=["server"])
async def health(api: ApiDep) -> HealthOut:
    """Whether the server is up (no token needed), and its in-process agent's state."""
    from sire import __version__

    api.store  # noqa: B018 - raises (503) while the store is not open
    return HealthOut(version=__version__, agent=api.agent_state)


# -- workflows -------------------------------------------------------------------------


@router.post(
    "/workflows",
    status_code=201,
    response_model=WorkflowVersionOut,
    responses={
        200: {"model": WorkflowVersionOut, "description": "Already the latest version."},
        **_errors(400, 401, 403, 413),
    },
    tags=["workflows"],
)
async def register_workflow(
    body: WorkflowIn, bearer: Bearer, api: ApiDep, response: Response
) -> WorkflowVersionOut:
    """Register a workflow definition (admin on that workflow): its next version."""
    from sire.cli import runtime
    from sire.model.loader import parse_workflow

    async with api.call(_text(bearer), "workflow.register", "workflows", mutating=True) as call:
        if not any(g.role == "admin" for g in call.token.grants):
            call.require("admin")  # refused before the definition is even read
        workflow = parse_workflow(body.definition, source="<request>")
        call.target = f"workflow/{workflow.id}"
        call.require("admin", workflow.id)
        runtime.check_workflow(workflow, api.mux, api.config)
        try:
            latest = (await api.store.get_workflow(workflow.id)).version
        except NotFoundError:
            latest = 0
        version = await api.store.register_workflow(
            workflow.id, workflow.digest, workflow.text, api.clock.time(), call.token.id
        )
        call.status = response.status_code = 201 if version.version > latest else 200
        call.detail.update(version=version.version, workflow_hash=version.workflow_hash)
        return WorkflowVersionOut.of(version)


@router.get("/workflows", response_model=WorkflowList, responses=_errors(401), tags=["workflows"])
async def list_workflows(bearer: Bearer, api: ApiDep) -> WorkflowList:
    """The latest version of each registered workflow the token may inspect."""
    async with api.call(_text(bearer), "workflow.list", "workflows", mutating=False) as call:
        visible = visible_workflows(call.token)
        return WorkflowList(
            workflows=[
                WorkflowVersionOut.of(v)
                for v in await api.store.list_workflows()
                if visible is None or v.workflow_id in visible
            ]
        )


@router.get(
    "/workflows/{workflow_id}",
    response_model=WorkflowOut,
    responses=_errors(400, 401, 403, 404),
    tags=["workflows"],
)
async def get_workflow(
    workflow_id: str,
    bearer: Bearer,
    api: ApiDep,
    version: Annotated[int | None, Query(ge=1, le=MAX_INT, description="[default: latest]")] = None,
) -> WorkflowOut:
    """A registered workflow (viewer): its definition, inputs and steps."""
    target = f"workflow/{workflow_id}"
    async with api.call(_text(bearer), "workflow.get", target, mutating=False) as call:
        call.require("viewer", workflow_id)
        found = await api.store.get_workflow(workflow_id, version)
        source = await api.store.get_definition(found.workflow_hash)
        workflow = api.workflow(found.workflow_hash, source)
        return WorkflowOut(
            **WorkflowVersionOut.of(found).model_dump(),
            definition=source,
            inputs=json.loads(json.dumps(workflow.inputs, default=dict)),
            steps=[step.id for step in workflow.steps],
            graph=GraphStepOut.graph(workflow),
        )


@router.post(
    "/workflows/{workflow_id}/executions",
    status_code=201,
    response_model=ExecutionOut,
    responses=_errors(400, 401, 403, 404, 413),
    tags=["executions"],
)
async def start_execution(
    workflow_id: str, body: ExecutionIn, bearer: Bearer, api: ApiDep
) -> ExecutionOut:
    """Start an execution of a registered workflow (operator): created pending for an agent."""
    from sire.cli.runtime import new_execution, resolve_checked_inputs

    target = f"workflow/{workflow_id}"
    async with api.call(_text(bearer), "execution.start", target, mutating=True) as call:
        call.require("operator", workflow_id)
        found = await api.store.get_workflow(workflow_id, body.version)
        source = await api.store.get_definition(found.workflow_hash)
        workflow = api.workflow(found.workflow_hash, source)
        values = resolve_checked_inputs(workflow, body.inputs, api.config)
        execution = new_execution(workflow, values, api.workspace)
        await api.store.create_execution(execution, workflow.text)
        call.status = 201
        call.detail.update(execution_id=execution.id, version=found.version, inputs=sorted(values))
        return ExecutionOut.of(execution)


@router.get("/me", response_model=MeOut, responses=_errors(401), tags=["server"])
async def me(bearer: Bearer, api: ApiDep) -> MeOut:
    """The token's own id, name, grants and expiry (any valid token)."""
    async with api.call(_text(bearer), "token.me", "me", mutating=False) as call:
        token = call.token
        return MeOut(
            token_id=token.id,
            name=token.name,
            grants=[GrantOut(role=g.role, workflow_id=g.workflow_id) for g in token.grants],
            expires_at=token.expires_at,
        )


# -- executions ------------------------------------------------------------------------


@router.get(
    "/executions",
    response_model=ExecutionList,
    responses=_errors(400, 401, 403),
    tags=["executions"],
)
async def list_executions(
    bearer: Bearer,
    api: ApiDep,
    status: Annotated[list[ExecutionStatus] | None, Query(description="Only these.")] = None,
    workflow_id: Annotated[str | None, Query(description="Only this workflow's.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    since: Annotated[
        float | None, Query(ge=0, le=1e11, description="Created at or after (epoch seconds).")
    ] = None,
    before: Annotated[
        float | None, Query(ge=0, le=1e11, description="Created before (epoch seconds).")
    ] = None,
) -> ExecutionList:
    """Executions the token may inspect, newest first, without their steps."""
    async with api.call(_text(bearer), "execution.list", "executions", mutating=False) as call:
        if workflow_id is not None:
            call.require("viewer", workflow_id)
            scopes: list[str] | None = [workflow_id]
        else:
            visible = visible_workflows(call.token)
            scopes = None if visible is None else sorted(visible)
        store = api.store
        if scopes is None:
            found = await store.list_executions(
                statuses=status, limit=limit, since=since, before=before
            )
        else:
            found = []
            for scope in scopes:
                found += await store.list_executions(
                    statuses=status, workflow_id=scope, limit=limit, since=since, before=before
                )
            found.sort(key=lambda e: (e.created_at, e.id), reverse=True)
        return ExecutionList(executions=[ExecutionOut.of(e, steps=False) for e in found[:limit]])


@router.get(
    "/executions/{execution_id}",
    response_model=ExecutionOut,
    responses=_errors(401, 403, 404),
    tags=["executions"],
)
async def get_execution(execution_id: str, bearer: Bearer, api: ApiDep) -> ExecutionOut:
    """An execution (viewer on its workflow), with the state of each step."""
    target = f"execution/{execution_id}"
    async with api.call(_text(bearer), "execution.get", target, mutating=False) as call:
        execution = await call.execution(api.store, execution_id, "viewer")
        return ExecutionOut.of(execution)


@router.get(
    "/executions/{execution_id}/graph",
    response_model=GraphOut,
    responses=_errors(401, 403, 404),
    tags=["executions"],
)
async def get_graph(execution_id: str, bearer: Bearer, api: ApiDep) -> GraphOut:
    """The DAG of the definition the execution runs (viewer): steps and what each waits for."""
    target = f"execution/{execution_id}"
    async with api.call(_text(bearer), "execution.graph", target, mutating=False) as call:
        execution = await call.execution(api.store, execution_id, "viewer")
        source = await api.store.get_definition(execution.workflow_hash)
        workflow = api.workflow(execution.workflow_hash, source)
        return GraphOut(
            workflow_id=execution.workflow_id,
            workflow_hash=execution.workflow_hash,
            steps=GraphStepOut.graph(workflow),
        )


@router.get(
    "/executions/{execution_id}/plan",
    responses=_errors(401, 403, 404),
    tags=["executions"],
)
async def get_plan(execution_id: str, bearer: Bearer, api: ApiDep) -> dict[str, Any]:
    """Each step's parameters as rendered from the stored inputs and outputs (viewer).

    The document `sire run --dry-run --json` prints, for the execution so far: the
    parameters of a step whose parents completed are those it was (or will be) called
    with; what waits on an unfinished step or a secret stays pending (never shown).
    """
    from sire.artifacts import resolve_execution
    from sire.cli.plan import plan_document
    from sire.engine.plan import build_plan
    from sire.model.execution import StepStatus
    from sire.secrets.redact import shown

    target = f"execution/{execution_id}"
    async with api.call(_text(bearer), "execution.plan", target, mutating=False) as call:
        execution = await call.execution(api.store, execution_id, "viewer")
        source = await api.store.get_definition(execution.workflow_hash)
        workflow = api.workflow(execution.workflow_hash, source)
        execution = await resolve_execution(api.artifacts, execution)
        outputs = {
            key: shown(state.output)
            for key, state in execution.step_states.items()
            if state.status is StepStatus.COMPLETED and "/" not in key
        }
        plan = build_plan(
            workflow,
            execution.inputs,
            api.config.template_env(),
            workspace=execution.workspace,
            outputs=outputs,
            execution_id=execution.id,
        )
        document = plan_document(plan, {}, (), plan.problems, online=False)
        document["dry_run"] = False
        document["execution_id"] = execution.id
        return document


@router.get(
    "/executions/{execution_id}/artifacts/{digest}",
    response_class=Response,
    responses={
        200: {"content": {"application/json": {}}, "description": "The output, as JSON."},
        **_errors(401, 403, 404),
    },
    tags=["executions"],
)
async def get_artifact(execution_id: str, digest: str, bearer: Bearer, api: ApiDep) -> Response:
    """An output the execution keeps in the artifact store (viewer), checked against its digest.

    Only artifacts the execution refers to are served.
    """
    from sire.artifacts import digest_of, is_ref

    target = f"execution/{execution_id}/artifacts/{digest}"
    async with api.call(_text(bearer), "execution.artifact", target, mutating=False) as call:
        execution = await call.execution(api.store, execution_id, "viewer")
        values = [s.output for s in execution.step_states.values()] + [execution.outputs]
        refs = [v for v in values if is_ref(v) and digest_of(v) == digest]
        if not refs:
            raise NotFoundError(f"execution {execution_id} has no artifact {digest}")
        from sire.secrets.redact import shown

        value = await api.artifacts.resolve(refs[0])
        return Response(json.dumps(shown(value)), media_type="application/json")


@router.post(
    "/executions/{execution_id}/cancel",
    response_model=ExecutionOut,
    responses=_errors(401, 403, 404, 409),
    tags=["executions"],
)
async def cancel_execution(execution_id: str, bearer: Bearer, api: ApiDep) -> ExecutionOut:
    """Cancel (operator): at once if no one drives it, else at its driver's next heartbeat."""
    target = f"execution/{execution_id}"
    async with api.call(_text(bearer), "execution.cancel", target, mutating=True) as call:
        execution = await call.execution(api.store, execution_id, "operator")
        execution = await api.store.request_cancel(execution_id, api.clock.time())
        call.detail["execution_status"] = str(execution.status)
        return ExecutionOut.of(execution)


@router.post(
    "/executions/{execution_id}/resume",
    status_code=202,
    response_model=ExecutionOut,
    responses=_errors(401, 403, 404, 409),
    tags=["executions"],
)
async def resume_execution(execution_id: str, bearer: Bearer, api: ApiDep) -> ExecutionOut:
    """Put a failed execution back to pending (operator) for an agent to drive on.

    Completed steps are kept; failed and skipped ones run again.
    """
    from sire.engine.engine import default_owner

    target = f"execution/{execution_id}"
    async with api.call(_text(bearer), "execution.resume", target, mutating=True) as call:
        store = api.store
        execution = await store.get_execution(execution_id)
        call.require("operator", execution.workflow_id)
        if execution.status is not ExecutionStatus.FAILED:
            why = (
                "it has finished"
                if execution.status.finished
                else "an agent drives it on without being asked"
            )
            raise InvalidTransitionError(
                f"execution {execution_id} is {execution.status}: only a failed execution can be "
                f"resumed, and {why}"
            )
        now = api.clock.time()
        lease = await store.acquire_lease(
            execution_id, f"{default_owner()}/api", api.config.lease_ttl, now
        )
        try:
            await store.update_execution(lease, ExecutionStatus.PENDING)
        finally:
            await store.release_lease(lease)
        call.status = 202
        return ExecutionOut.of(await store.get_execution(execution_id))


class EventStream(StreamingResponse):
    media_type = "text/event-stream"


#: one server-sent event (OpenAPI 3.2's `itemSchema` for event streams)
_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "id": {"type": "string", "description": "The event's seq."},
        "event": {"type": "string", "enum": ["step", "execution", "end"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
}


@router.get(
    "/executions/{execution_id}/events",
    response_class=EventStream,
    responses={
        200: {
            "content": {"text/event-stream": {"itemSchema": _EVENT}},
            "description": "Server-sent events: `step` and `execution` transitions, then `end`.",
        },
        **_errors(400, 401, 403, 404),
    },
    tags=["executions"],
)
async def stream_events(
    execution_id: str,
    request: Request,
    bearer: Bearer,
    api: ApiDep,
    after: Annotated[int, Query(ge=0, le=2**62, description="Only events after this seq.")] = 0,
    follow: Annotated[bool, Query(description="Wait for new events until it finishes.")] = True,
) -> EventStream:
    """An execution's events (viewer), as server-sent events; ends when it finishes.

    Each event's `id` is its seq (a reconnecting client sends it back as
    `Last-Event-ID`), its `event` is `step` or `execution`, its `data` a JSON object.
    A last `end` event carries the execution's final status.
    """
    target = f"execution/{execution_id}"
    async with api.call(_text(bearer), "execution.events", target, mutating=False) as call:
        await call.execution(api.store, execution_id, "viewer")
    last = request.headers.get("last-event-id", "")
    if last.isdigit() and len(last) < 19:
        after = max(after, int(last))
    return EventStream(
        _events(api, execution_id, after, follow),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(api: Api, execution_id: str, after: int, follow: bool) -> AsyncIterator[str]:
    import asyncio

    store = api.store
    seen = after
    idle = 0.0
    while True:
        events = await store.list_events(execution_id, after=seen)
        for event in events:
            document = {
                "seq": event.seq,
                "at": event.at,
                "kind": event.kind,
                "key": event.key,
                "status": event.status,
                **dict(event.data),
            }
            data = json.dumps(document, default=str)
            yield f"id: {event.seq}\nevent: {event.kind}\ndata: {data}\n\n"
            seen = event.seq
        if not events:
            execution = await store.get_execution(execution_id)
            if execution.status.finished or not follow:
                # Its last events were written with its final status: read them once more.
                if execution.status.finished and await store.list_events(execution_id, after=seen):
                    continue
                end = {"status": str(execution.status), "finished": execution.status.finished}
                yield f"event: end\ndata: {json.dumps(end)}\n\n"
                return
            idle += api.poll_interval
            if idle >= 15:  # a comment keeps proxies from closing a quiet stream
                idle = 0.0
                yield ": keep-alive\n\n"
        else:
            idle = 0.0
        await asyncio.sleep(api.poll_interval)


# -- tokens and audit (admin on every workflow) ----------------------------------------


@router.post(
    "/tokens",
    status_code=201,
    response_model=TokenCreated,
    responses=_errors(400, 401, 403, 413),
    tags=["tokens"],
)
async def create_token(body: TokenIn, bearer: Bearer, api: ApiDep) -> TokenCreated:
    """Mint an API token (admin): its text is in this answer only."""
    from sire.model.durations import parse_duration

    async with api.call(_text(bearer), "token.create", "tokens", mutating=True) as call:
        call.require("admin")
        now = api.clock.time()
        expires_at = None
        if body.expires_in is not None:
            try:
                expires_at = now + parse_duration(body.expires_in)
            except ValueError as exc:
                raise InputError(f"expires_in: {exc}") from None
        token, text = mint(
            body.role, body.workflows, name=body.name, now=now, expires_at=expires_at
        )
        await api.store.create_token(token)
        call.target = f"token/{token.id}"
        call.status = 201
        call.detail.update(role=body.role, workflows=sorted(set(body.workflows)))
        return TokenCreated(**TokenOut.of(token, "active").model_dump(), token=text)


@router.get("/tokens", response_model=TokenList, responses=_errors(401, 403), tags=["tokens"])
async def list_tokens(bearer: Bearer, api: ApiDep) -> TokenList:
    """Every API token (admin), without secrets."""
    async with api.call(_text(bearer), "token.list", "tokens", mutating=False) as call:
        call.require("admin")
        now = api.clock.time()
        tokens = await api.store.list_tokens()
        return TokenList(tokens=[TokenOut.of(t, token_status(t, now)) for t in tokens])


@router.delete(
    "/tokens/{token_id}",
    response_model=TokenOut,
    responses=_errors(401, 403, 404),
    tags=["tokens"],
)
async def revoke_token(token_id: str, bearer: Bearer, api: ApiDep) -> TokenOut:
    """Revoke an API token (admin); it is refused from then on."""
    target = f"token/{token_id}"
    async with api.call(_text(bearer), "token.revoke", target, mutating=True) as call:
        call.require("admin")
        now = api.clock.time()
        if not await api.store.revoke_token(token_id, now):
            raise NotFoundError(f"no active API token with id '{token_id}'")
        token = next(t for t in await api.store.list_tokens() if t.id == token_id)
        return TokenOut.of(token, token_status(token, now))


@router.get("/audit", response_model=AuditList, responses=_errors(400, 401, 403), tags=["audit"])
async def list_audit(
    bearer: Bearer,
    api: ApiDep,
    after: Annotated[int, Query(ge=0, le=2**62, description="Only entries after this seq.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditList:
    """The audit log (admin), oldest first."""
    async with api.call(_text(bearer), "audit.list", "audit", mutating=False) as call:
        call.require("admin")
        entries = await api.store.list_audit(after=after, limit=limit)
        return AuditList(entries=[AuditOut.of(e) for e in entries])
