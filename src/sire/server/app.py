"""The HTTP API's application: the ASGI app factory, its lifespan, errors and audit.

Above: `sire server` (uvicorn) and tests (an in-process client). Below: the Store
every request reads and writes, and, with `agent=True`, an in-process `Agent`
driving pending executions through the same engine as the CLI. Routes live in
routes.py; who may do what in auth.py.

Every error is `{"error": "one sentence"}` with its status: 400 bad input, 401 no
valid token, 403 a role missing, 404 unknown, 409 a conflict with the execution's
state, 413 a body over the size limit, 503 the store is unavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from sire.clock import Clock, SystemClock
from sire.config import Config, load_config
from sire.errors import (
    ConfigError,
    DefinitionError,
    InputError,
    InvalidTransitionError,
    LeaseHeldError,
    NotFoundError,
    SireError,
    StoreError,
    TemplateError,
)
from sire.model.execution import Execution
from sire.model.workflow import Workflow
from sire.server.auth import Denied, authenticate, require
from sire.storage import open_store
from sire.storage.base import Store, Token

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class Api:
    """What every request shares: config, the open store, parsed definitions, the agent."""

    def __init__(
        self,
        config: Config,
        *,
        db: str | None,
        agent: bool,
        workspace: Path,
        clock: Clock,
        poll_interval: float,
        agent_concurrency: int,
    ) -> None:
        self.config = config
        self.db = db
        self.agent = agent
        self.workspace = workspace
        self.clock = clock
        self.poll_interval = poll_interval
        self.agent_concurrency = agent_concurrency
        self.agent_state = "off"
        self._store: Store | None = None
        self.mux: Any = None
        self._workflows: dict[str, Workflow] = {}
        from sire.artifacts import configured

        #: where large outputs are read from (the download route)
        self.artifacts = configured(config)
        from sire.observability.metrics import Metrics

        #: what `/metrics` shows: the in-process agent's engine counts into it
        self.metrics = Metrics()
        #: seconds between counts of due and running executions for the queue gauges
        self.metrics_interval = 5.0

    @property
    def store(self) -> Store:
        if self._store is None:
            raise StoreError("the server's store is not open (starting or stopping)")
        return self._store

    def workflow(self, workflow_hash: str, source: str) -> Workflow:
        """The parsed definition stored under `workflow_hash` (parsed once)."""
        from sire.cli.runtime import stored_workflow

        workflow = self._workflows.get(workflow_hash)
        if workflow is None:
            if len(self._workflows) >= 256:
                self._workflows.clear()
            workflow = self._workflows[workflow_hash] = stored_workflow(workflow_hash, source)
        return workflow

    async def audit(
        self, actor: str, action: str, target: str, allowed: bool, detail: dict[str, Any]
    ) -> None:
        try:
            await self.store.add_audit(self.clock.time(), actor, action, target, allowed, detail)
        except SireError as exc:
            # The call's own answer still goes out; a lost audit line is logged loudly.
            log.error("sire.server.audit_failed action=%s target=%s error=%s", action, target, exc)

    @contextlib.asynccontextmanager
    async def call(
        self, bearer: str | None, action: str, target: str, *, mutating: bool
    ) -> AsyncIterator[Call]:
        """Authenticate one API call and audit it: always when mutating, else when denied.

        Raises:
            Denied: 401 from here; 403 from the body's `Call.require`.
        """
        try:
            token = await authenticate(self.store, bearer, self.clock.time())
        except Denied as exc:
            await self.audit(exc.actor, action, target, False, {"status": 401, "error": str(exc)})
            raise
        call = Call(token, target)
        try:
            yield call
        except Denied as exc:
            detail = {"status": exc.status, "error": str(exc)}
            await self.audit(token.id, action, call.target, False, detail)
            raise
        except Exception as exc:
            if mutating:
                # Input errors may quote what was sent: the audit log keeps only their kind.
                quoted = isinstance(exc, InputError) or not isinstance(exc, SireError)
                error = type(exc).__name__ if quoted else str(exc)
                detail = {**call.detail, "status": status_of(exc), "error": error}
                await self.audit(token.id, action, call.target, True, detail)
            raise
        if mutating:
            detail = {**call.detail, "status": call.status}
            await self.audit(token.id, action, call.target, True, detail)


class Call:
    """One authenticated API call: the token, its target, and what the audit line says."""

    def __init__(self, token: Token, target: str) -> None:
        self.token = token
        self.target = target
        self.detail: dict[str, Any] = {}
        self.status = 200

    def require(self, role: str, workflow_id: str | None = None) -> None:
        """Raises: Denied: 403 when the token lacks `role` on `workflow_id` (None: all)."""
        require(self.token, role, workflow_id)

    async def execution(self, store: Store, execution_id: str, role: str) -> Execution:
        """The execution, once the token is found to hold `role` on its workflow.

        Raises:
            NotFoundError: no such execution.
            Denied: 403 when the token lacks the role.
        """
        execution = await store.get_execution(execution_id)
        self.require(role, execution.workflow_id)
        return execution


def status_of(exc: Exception) -> int:
    """The HTTP status an error maps to."""
    if isinstance(exc, Denied):
        return exc.status
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, InputError | DefinitionError | TemplateError):
        return 400
    if isinstance(exc, InvalidTransitionError | LeaseHeldError):
        return 409
    if isinstance(exc, StoreError | ConfigError):
        return 503
    return 500


def create_app(
    config: Config | None = None,
    *,
    db: str | None = None,
    agent: bool = False,
    workspace: Path | None = None,
    clock: Clock | None = None,
    poll_interval: float = 0.25,
    agent_concurrency: int = 16,
    max_body_bytes: int | None = None,
) -> FastAPI:
    """The Sire HTTP API over the store `db` (default: the config's).

    Args:
        config: settings (default: `load_config()`).
        db: store URL; overrides the config's.
        agent: also drive pending executions in-process while the app runs.
        workspace: where executions started here keep their files [default: cwd].
        clock: stamps audit entries and judges token expiry.
        poll_interval: seconds between store reads of an event stream (and agent claims).
        agent_concurrency: executions the in-process agent drives at once.
        max_body_bytes: largest request body [default: the config's payload limit].
    """
    from sire import __version__
    from sire.server.routes import router

    config = config or load_config()
    api = Api(
        config,
        db=db,
        agent=agent,
        workspace=(workspace or Path.cwd()).resolve(),
        clock=clock or SystemClock(),
        poll_interval=poll_interval,
        agent_concurrency=agent_concurrency,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with _running(api):
            yield

    app = FastAPI(
        title="Sire",
        version=__version__,
        description="Register workflows, start and steer executions, stream their events.",
        lifespan=lifespan,
    )
    app.state.api = api
    app.include_router(router)
    _install_dashboard(app)
    _install_metrics(app, api)
    _install_errors(app)
    app.add_middleware(BodyLimit, limit=max_body_bytes or config.max_payload_bytes)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


@contextlib.asynccontextmanager
async def _running(api: Api) -> AsyncIterator[None]:
    """Open the store (and start the agent) for as long as the app serves."""
    from sire.cli import runtime

    api._store = await open_store(api.db or api.config.db_url, home=api.config.home)
    api.mux = runtime.build_dispatcher(api.config)
    from sire.observability.metrics import watch_queue

    stop = asyncio.Event()
    task: asyncio.Task[None] | None = None
    active: Callable[[], int] = lambda: 0  # noqa: E731 - no agent, no leases
    if api.agent:
        from sire.agent.agent import Agent

        engine = runtime.new_engine(api._store, api.mux, api.config, metrics=api.metrics)
        worker = Agent(
            engine,
            runtime.stored_workflow,
            concurrency=api.agent_concurrency,
            poll_interval=api.poll_interval,
        )
        task = asyncio.create_task(_drive(api, worker.run(stop=stop)), name="sire-server-agent")
        active = lambda: len(worker._busy)  # noqa: E731
    watcher = asyncio.create_task(
        watch_queue(api.metrics, api._store, active, stop, interval=api.metrics_interval),
        name="sire-server-metrics",
    )
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(watcher, return_exceptions=True)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        await api.mux.aclose()
        store, api._store = api._store, None
        await store.aclose()


async def _drive(api: Api, run: Awaitable[None]) -> None:
    api.agent_state = "running"
    try:
        await run
    except SireError as exc:
        log.error("sire.server.agent_stopped error=%s", exc)
    finally:
        api.agent_state = "stopped"


#: the dashboard: plain ES modules and SVG, served as they are (no build step)
DASHBOARD = Path(__file__).parent / "dashboard"


def _install_dashboard(app: FastAPI) -> None:
    """The web dashboard at /ui/ (and / leads there); it signs in with an API token."""
    from fastapi.responses import RedirectResponse
    from fastapi.staticfiles import StaticFiles

    app.mount("/ui", StaticFiles(directory=DASHBOARD, html=True), name="ui")

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/ui/")


def _install_metrics(app: FastAPI, api: Api) -> None:
    """`GET /metrics`: Prometheus' text format, without a token (as scrapers expect).

    It names workflows, tools and counts, never inputs, outputs or execution ids.
    """
    from fastapi.responses import Response

    from sire.observability.metrics import CONTENT_TYPE

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(api.metrics.exposition(), media_type=CONTENT_TYPE)


def _install_errors(app: FastAPI) -> None:
    def error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
        # A message may quote what was sent, lone surrogates included: keep it encodable.
        message = message.encode("utf-8", "replace").decode()
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(Denied)
    async def denied(request: Request, exc: Denied) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error(exc.status, str(exc), headers)

    @app.exception_handler(SireError)
    async def sire_error(request: Request, exc: SireError) -> JSONResponse:
        status = status_of(exc)
        if status >= 500:
            log.error("sire.server.error path=%s error=%s", request.url.path, exc)
        return error(status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(400, _validation_sentence(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("sire.server.internal_error path=%s", request.url.path)
        return error(500, "internal error; the server log has the details")


def _validation_sentence(exc: RequestValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "the request is invalid"
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
    message = str(first.get("msg", "is invalid")).removeprefix("Value error, ")
    if first.get("type") == "json_invalid":
        return f"the request body is not valid JSON ({first.get('ctx', {}).get('error', '')})"
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"{where}: {message}{more}"


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with the 422 it assumes replaced by the 400 Sire sends.

    Every error is `ErrorOut` as JSON, also on the event stream's route.
    """
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
        for path in document.get("paths", {}).values():
            for operation in path.values():
                responses = operation.get("responses", {})
                responses.pop("422", None)
                for status, response in responses.items():
                    if status >= "400":  # errors are JSON, whatever the route's own type
                        response["content"] = error
                    for media in response.get("content", {}).values():
                        if "itemSchema" in media:  # a stream: its items have the schema
                            media.pop("schema", None)
        schemas = document.get("components", {}).get("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        app.openapi_schema = document
    return app.openapi_schema


class BodyLimit:
    """Refuse request bodies over `limit` bytes with 413, before any route reads them."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        response = JSONResponse(
            {"error": f"the request body is larger than the limit of {self.limit} bytes"},
            status_code=413,
        )
        await response({"type": "http"}, _nothing, send)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}
