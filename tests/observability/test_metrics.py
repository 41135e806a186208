"""Metrics: `/metrics` of `sire server` and of the agent's port, after a known workflow."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from sire.config import load_config
from sire.server.app import create_app
from sire.server.auth import mint

KNOWN = """\
id: metered
steps:
  - {id: a, tool: "sire:local/echo", with: {x: missing}}
  - {id: b, tool: "sire:local/echo", with: {y: "{{ steps.a.output.x }}"}}
  - id: read
    tool: "sire:local/file.read"
    with: {path: "{{ steps.b.output.y }}.txt"}
    retry: {max_attempts: 2, initial_interval: 10ms}
"""


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus exposition, by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def _assert_known_workflow(samples: dict[Any, float]) -> None:
    assert _value(samples, "sire_executions_started_total") == 1
    assert _value(samples, "sire_executions_finished_total", status="failed") == 1
    assert _value(samples, "sire_executions_finished_total", status="completed") is None
    echo = {"scheme": "sire", "tool": "local/echo"}
    read = {"scheme": "sire", "tool": "local/file.read"}
    assert _value(samples, "sire_step_duration_seconds_count", **echo) == 2
    assert _value(samples, "sire_step_duration_seconds_count", **read) == 2
    assert _value(samples, "sire_step_duration_seconds_bucket", **echo, le="+Inf") == 2
    assert (_value(samples, "sire_step_duration_seconds_sum", **echo) or 0) > 0
    assert _value(samples, "sire_dispatch_errors_total", scheme="sire", kind="tool") == 2
    assert _value(samples, "sire_step_retries_total", workflow_id="metered") == 1
    assert _value(samples, "sire_step_failures_total", workflow_id="metered") == 1
    # a, b and read's two attempts: each completion or failure is one durable write
    transitions = _value(
        samples, "sire_store_write_duration_seconds_count", operation="record_transition"
    )
    assert transitions is not None
    assert transitions >= 4
    updates = _value(
        samples, "sire_store_write_duration_seconds_count", operation="update_execution"
    )
    assert updates is not None
    assert updates >= 2
    # No label names an execution.
    assert not any("execution_id" in dict(labels) for _, labels in samples)


def test_server_metrics_count_a_known_workflow(tmp_path: Path) -> None:
    app = create_app(
        load_config(),
        db=f"sqlite:///{tmp_path / 'sire.db'}",
        agent=True,
        workspace=tmp_path,
        poll_interval=0.02,
    )
    app.state.api.metrics_interval = 0.05
    with TestClient(app) as client:
        api = app.state.api
        record, text = mint("admin", (), now=time.time())
        assert client.portal is not None
        client.portal.call(api.store.create_token, record)
        auth = {"Authorization": f"Bearer {text}"}
        assert client.post("/v1/workflows", json={"definition": KNOWN}, headers=auth).is_success
        started = client.post("/v1/workflows/metered/executions", json={}, headers=auth)
        execution_id = started.json()["execution_id"]
        deadline = time.monotonic() + 20
        while client.get(f"/v1/executions/{execution_id}", headers=auth).json()["status"] != (
            "failed"
        ):
            assert time.monotonic() < deadline, "the execution did not finish"
            time.sleep(0.02)
        deadline = time.monotonic() + 5
        while True:  # the queue gauges are counted every metrics_interval
            scraped = client.get("/metrics")  # no token: scrapers have none
            samples = _samples(scraped.text)
            if _value(samples, "sire_queue_running_executions") == 0:
                break
            assert time.monotonic() < deadline
            time.sleep(0.02)

    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    _assert_known_workflow(samples)
    assert _value(samples, "sire_queue_due_executions") == 0
    assert _value(samples, "sire_active_leases") == 0


def test_agent_metrics_port_serves_the_same_metrics(sire: Any, write: Any, tmp_path: Path) -> None:
    from sire.agent.agent import Agent
    from sire.cli import runtime
    from sire.observability.metrics import Metrics, serve
    from sire.storage import open_store

    workflow = write(KNOWN)
    detached = sire("run", str(workflow), "--detach", "--json", "--workspace", str(tmp_path))
    assert detached.code == 0, detached.err
    config = load_config()
    metrics = Metrics()

    async def drive() -> int:
        store = await open_store(config.db_url, home=config.home)
        mux = runtime.build_dispatcher(config)
        try:
            engine = runtime.new_engine(store, mux, config, metrics=metrics)
            worker = Agent(engine, runtime.stored_workflow)
            await worker.run(once=True)
            return worker.driven
        finally:
            await mux.aclose()
            await store.aclose()

    assert asyncio.run(drive()) == 1
    port, stop = serve(metrics, "127.0.0.1", 0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
    finally:
        stop()
    _assert_known_workflow(_samples(text))


def test_a_busy_metrics_port_is_one_clear_error(sire: Any) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = sire("agent", "--once", "--metrics-port", str(port))
    assert result.code == 3
    assert f"--metrics-port {port}: cannot listen on 127.0.0.1:{port}" in result.err


def test_an_mcp_tools_latency_is_labelled_by_server_and_tool() -> None:
    from sire.model.uri import ToolURI
    from sire.observability.metrics import Metrics

    metrics = Metrics()
    histogram, scheme = metrics.timer(ToolURI.parse("mcp:weather#forecast"))
    histogram.observe(0.5)
    samples = _samples(metrics.exposition().decode())
    labels = {"scheme": "mcp", "tool": "weather#forecast"}
    assert scheme == "mcp"
    assert _value(samples, "sire_step_duration_seconds_count", **labels) == 1
