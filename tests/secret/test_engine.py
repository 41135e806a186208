"""The engine with secrets: tools get real values; the store, observers and gates see `***`."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from sire.dispatch.dispatcher import DispatchContext
from sire.dispatch.inprocess import InProcessDispatcher, InProcessServer
from sire.dispatch.mux import DispatcherMux
from sire.engine.engine import Engine, NullObserver
from sire.engine.gate import RUN, Decision, GateStop
from sire.errors import ConfigError, ToolError
from sire.model.execution import Execution, ExecutionStatus, StepState, new_execution_id
from sire.model.loader import parse_workflow
from sire.model.workflow import Workflow
from sire.secrets.redact import active, contains_sealed
from sire.secrets.vault import FixedSecrets
from sire.testing import MemoryStore

VALUE = "s3cr3t-Value_42"

WORKFLOW = """
    id: t
    steps:
      - id: login
        tool: sire:local/login
        with: {token: "{{ .secrets.token }}"}
      - id: fan
        tool: sire:local/login
        for_each: "{{ [secrets.token, 'plain'] }}"
        with: {token: "{{ item }}"}
      - id: use
        tool: sire:local/use
        with: {auth: "{{ steps.login.output.auth }}", items: "{{ steps.fan.output.items }}"}
    outputs:
      auth: "{{ steps.login.output.auth }}"
      used: "{{ steps.use.output }}"
"""


class Tools:
    """`login` reports progress and returns a header; `use` fails once, echoing its params."""

    def __init__(self) -> None:
        self.params: list[dict[str, Any]] = []
        self.failures = 1
        self.server = InProcessServer("test")
        self.server.add_tool(self.login, name="login")
        self.server.add_tool(self.use, name="use")

    def login(self, ctx: DispatchContext, token: str) -> dict[str, Any]:
        self.params.append({"token": token})
        ctx.report_progress(1, 2, f"logging in with {token}")
        return {"auth": f"Bearer {token}", "user": "ada"}

    def use(self, auth: str, items: list[Any]) -> dict[str, Any]:
        self.params.append({"auth": auth, "items": items})
        if self.failures:
            self.failures -= 1
            raise ToolError(f"refused {auth}")
        return {"ok": True, "items": len(items)}


class Seen(NullObserver):
    """Everything an observer is shown."""

    def __init__(self) -> None:
        self.shown: list[Any] = []

    def step_changed(self, execution: Execution, key: str, state: StepState) -> None:
        self.shown.append(state)

    def step_progress(
        self,
        execution: Execution,
        key: str,
        progress: float,
        total: float | None,
        message: str | None,
    ) -> None:
        self.shown.append(message)

    def execution_changed(self, execution: Execution) -> None:
        self.shown.append((execution.outputs, execution.error))


def workflow() -> Workflow:
    return parse_workflow(textwrap.dedent(WORKFLOW), source="t.yaml")


def engine(store: MemoryStore, tools: Tools, secrets: Any, **options: Any) -> Engine:
    mux = DispatcherMux({"sire": InProcessDispatcher(tools.server)}, entry_points=False)
    return Engine(store, mux, secrets=secrets, **options)


async def first_run() -> tuple[MemoryStore, Tools, FixedSecrets, Execution, Seen]:
    store, tools, secrets, seen = MemoryStore(), Tools(), FixedSecrets({"token": VALUE}), Seen()
    wf = workflow()
    execution = Execution(new_execution_id(), wf.id, wf.digest, inputs={})
    await store.create_execution(execution, wf.text)
    done = await engine(store, tools, secrets, observer=seen).run(wf, execution)
    return store, tools, secrets, done, seen


async def test_tools_get_the_real_values() -> None:
    _, tools, _, done, _ = await first_run()
    assert done.status is ExecutionStatus.FAILED
    assert sorted(p["token"] for p in tools.params[:3]) == sorted([VALUE, VALUE, "plain"])
    assert tools.params[3] == {
        "auth": f"Bearer {VALUE}",
        "items": [
            {"auth": f"Bearer {VALUE}", "user": "ada"},
            {"auth": "Bearer plain", "user": "ada"},
        ],
    }


async def test_what_observers_and_the_caller_see_is_redacted() -> None:
    _, _, _, done, seen = await first_run()
    assert VALUE not in repr(seen.shown)
    assert "logging in with ***" in seen.shown
    assert done.step_states["login"].output == {"auth": "Bearer ***", "user": "ada"}
    assert done.step_states["use"].error == "refused Bearer ***"
    assert done.error == "step 'use' failed: refused Bearer ***"
    assert VALUE not in repr(done.step_states)


async def test_the_store_holds_outputs_sealed_and_errors_and_events_redacted() -> None:
    store, _, _, done, _ = await first_run()
    stored = await store.get_execution(done.id)
    events = await store.list_events(done.id)
    assert VALUE not in repr(stored.step_states) + repr(stored.error) + repr(events)
    assert contains_sealed(stored.step_states["login"].output)
    assert contains_sealed(stored.step_states["fan/0"].output)
    assert contains_sealed(stored.step_states["fan"].output)
    assert not contains_sealed(stored.step_states["fan/1"].output)
    assert stored.step_states["use"].error == "refused Bearer ***"


async def test_a_resumed_dependent_receives_the_real_values() -> None:
    store, tools, secrets, done, _ = await first_run()
    wf = workflow()
    again = await store.get_execution(done.id)
    seen = Seen()
    resumed = await engine(store, tools, secrets, observer=seen).run(wf, again)
    assert resumed.status is ExecutionStatus.COMPLETED, resumed.error
    assert tools.params[-1] == tools.params[3]  # the same real values, read back unsealed
    assert len(tools.params) == 5  # login and fan were not run again
    assert resumed.outputs == {"auth": "Bearer ***", "used": {"ok": True, "items": 2}}
    assert VALUE not in repr(seen.shown) + repr(resumed.step_states)
    stored = await store.get_execution(done.id)
    assert VALUE not in repr(stored.outputs)
    assert contains_sealed(stored.outputs)


async def test_a_resume_with_another_key_fails_clearly_and_leaves_the_lease_free() -> None:
    store, tools, _, done, _ = await first_run()
    wf = workflow()
    other = engine(store, tools, FixedSecrets({"token": VALUE}))
    lease = await store.acquire_lease(done.id, "me", 15, 0.0)
    with pytest.raises(ConfigError, match=f"cannot decrypt a stored output of execution {done.id}"):
        await other.run(wf, await store.get_execution(done.id), lease=lease)
    await store.acquire_lease(done.id, "someone else", 15, 0.0)  # given back: not held


class Gate:
    """Records what a debugger would show, and the parameters it was handed."""

    def __init__(self) -> None:
        self.shown: list[str] = []
        self.params: list[Any] = []

    async def before_step(self, stop: GateStop) -> Decision:
        self.params.append(stop.params)
        self.shown.append(repr(active().redact(stop.params)))
        return RUN

    async def after_failure(self, stop: GateStop) -> Decision | None:
        self.shown.append(active().text(stop.error or ""))
        return None


async def test_a_gate_gets_real_params_and_the_runs_redactor_to_show_them() -> None:
    store, tools, gate = MemoryStore(), Tools(), Gate()
    wf = workflow()
    execution = Execution(new_execution_id(), wf.id, wf.digest, inputs={})
    await store.create_execution(execution, wf.text)
    await engine(store, tools, {"token": VALUE}, gate=gate).run(wf, execution)
    assert gate.params[0] == {"token": VALUE}
    assert gate.shown[0] == "{'token': '***'}"
    assert gate.shown[-1] == "refused Bearer ***"
    assert VALUE not in "".join(gate.shown)
    assert active().text(VALUE) == VALUE  # outside the run nothing is masked


async def test_without_secrets_nothing_is_sealed_or_masked() -> None:
    store, tools = MemoryStore(), Tools()
    tools.failures = 0
    wf = parse_workflow(
        "id: t\nsteps:\n  - {id: login, tool: sire:local/login, with: {token: '***x'}}\n"
    )
    execution = Execution(new_execution_id(), wf.id, wf.digest, inputs={})
    await store.create_execution(execution, wf.text)
    done = await engine(store, tools, None).run(wf, execution)
    stored = await store.get_execution(done.id)
    assert stored.step_states["login"].output == {"auth": "Bearer ***x", "user": "ada"}
    assert done.outputs == {"login": {"auth": "Bearer ***x", "user": "ada"}}
