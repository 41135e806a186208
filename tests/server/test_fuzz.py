"""A property-based fuzz of the API from its own OpenAPI document (schemathesis): no 5xx.

Every operation gets valid and invalid requests, sent as an admin (so requests
reach past authentication), derandomized and bounded so the run is repeatable and
short. The number of cases run is printed at the end of the module.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from sire.config import Config
from sire.model.execution import Execution, ExecutionStatus, new_execution_id
from sire.model.loader import parse_workflow
from sire.server.app import create_app
from sire.server.auth import mint
from sire.storage import open_store

from .conftest import HELLO

EXAMPLES_PER_OPERATION = 60
CASES: dict[str, int] = {}

# The schema is read from the app's own document at import (nothing runs yet); the app's
# store lives in a directory the fixture below creates, seeds and removes.
ROOT = Path(tempfile.gettempdir()) / f"sire-fuzz-{os.getpid()}-{uuid.uuid4().hex[:8]}"
DB = f"sqlite:///{ROOT / 'sire.db'}"
APP = create_app(Config(home=ROOT), db=DB, workspace=ROOT, max_body_bytes=64 * 1024)
schema = schemathesis.openapi.from_dict(APP.openapi())
schema.app = APP


#: ids that exist once seeded: half the generated path parameters are replaced by them,
#: so requests reach past "404 unknown" into inputs, transitions and revocation
KNOWN: dict[str, list[str]] = {"workflow_id": [], "execution_id": [], "token_id": []}


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
    if not path_parameters:
        return st.just(path_parameters)
    known = [
        {**path_parameters, name: value}
        for name in path_parameters
        for value in KNOWN.get(name, ())
    ]
    return st.sampled_from([path_parameters, *known])


async def _seed() -> str:
    """An admin token, a registered workflow, its executions (pending, failed), a token."""
    store = await open_store(DB, home=ROOT)
    try:
        now = time.time()
        record, text = mint("admin", now=now)
        await store.create_token(record)
        spare, _ = mint("viewer", ("hello",), now=now)
        await store.create_token(spare)
        workflow = parse_workflow(HELLO)
        await store.register_workflow(workflow.id, workflow.digest, workflow.text, now)
        for status in (ExecutionStatus.PENDING, ExecutionStatus.FAILED):
            execution = Execution(
                new_execution_id(), workflow.id, workflow.digest, status, {"name": "x"}
            )
            await store.create_execution(execution, workflow.text)
            KNOWN["execution_id"].append(execution.id)
        KNOWN["workflow_id"].append(workflow.id)
        KNOWN["token_id"].append(spare.id)
        return text
    finally:
        await store.aclose()


@pytest.fixture(scope="module")
def admin_token(request: pytest.FixtureRequest) -> Iterator[str]:
    from schemathesis.python.asgi import shutdown_lifespans

    ROOT.mkdir()
    try:
        yield asyncio.run(_seed())
        shutdown_lifespans()  # closes the app's store
    finally:
        shutil.rmtree(ROOT, ignore_errors=True)
    total = sum(CASES.values())
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\nschemathesis fuzz: {total} cases over {len(CASES)} operations")
    assert len(CASES) == 18, CASES
    assert total >= 18 * 10, CASES


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_request_makes_the_server_fail(case: Any, admin_token: str) -> None:
    key = f"{case.operation.method.upper()} {case.operation.path}"
    CASES[key] = CASES.get(key, 0) + 1
    # A followed stream of an execution no agent drives never ends: keep what came in 0.25 s.
    timeout = 0.25 if case.operation.path.endswith("/events") else None
    response = case.call(headers={"Authorization": f"Bearer {admin_token}"}, timeout=timeout)
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
