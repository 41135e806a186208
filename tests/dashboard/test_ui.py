"""The dashboard in a real browser: log in, run a workflow from its form and watch it,
open a failed step, and check that what a role may not do is not offered."""

from __future__ import annotations

import re
from typing import Any

from .conftest import Dashboard, request


def login(page: Any, dashboard: Dashboard, role: str) -> None:
    page.goto(f"{dashboard.ui}#/login")
    page.fill("input#token", dashboard.tokens[role])
    page.click("button[data-testid=login]")
    page.wait_for_selector("body[data-view=executions]")


def test_an_operator_runs_a_workflow_from_its_form_and_watches_its_nodes_turn_green(
    page: Any, dashboard: Dashboard, shot: Any
) -> None:
    login(page, dashboard, "operator")
    page.click("a[data-testid=nav-workflows]")
    page.click("tr[data-testid=workflow-row][data-id=dash-hello]")
    page.wait_for_selector("body[data-view=workflow]")
    form = page.locator("form[data-testid=run-form]")
    assert form.locator("[name=tags]").input_value().replace(" ", "").replace("\n", "") == (
        '["red","green"]'
    )
    form.locator("[name=name]").fill("Ada")
    page.click("button[data-testid=run]")

    page.wait_for_url(re.compile(r"#/executions/\w+$"))
    page.wait_for_selector("body[data-view=execution]")
    # The nap lasts 0.8 s: the page sees it running, then completed, without a reload.
    page.wait_for_selector("g.node[data-step=nap][data-status=running]")
    for step in ("greet", "nap", "each", "join"):
        page.wait_for_selector(f"g.node[data-step={step}][data-status=completed]")
    page.wait_for_selector("[data-testid=execution-status][data-status=completed]")
    page.wait_for_selector("[data-testid=outputs] >> text=Hello, Ada!")
    bars = page.locator("svg[data-testid=gantt] rect.attempt")
    keys = {bars.nth(i).get_attribute("data-step") for i in range(bars.count())}
    execution_id = page.url.rsplit("/", 1)[1]
    shot(page, "execution-completed")

    stored = dashboard.call("GET", f"/v1/executions/{execution_id}")
    assert stored["inputs"]["name"] == "Ada"
    assert stored["status"] == "completed"
    assert keys == {"greet", "nap", "each", "each/0", "each/1", "join"}
    assert page.locator("g.node[data-step=each] text.items").text_content() == "2/2"
    assert page.locator("button[data-testid=cancel]").count() == 0  # it has finished


def test_a_failed_step_shows_its_error_in_the_step_panel(
    page: Any, dashboard: Dashboard, shot: Any
) -> None:
    execution_id = dashboard.start("dash-broken")
    assert dashboard.wait(execution_id) == "failed"
    login(page, dashboard, "operator")

    page.click(f"tr[data-testid=execution-row][data-id='{execution_id}']")
    page.wait_for_selector("body[data-view=execution]")
    page.wait_for_selector("g.node[data-step=read][data-status=failed]")
    page.wait_for_selector("g.node[data-step=after][data-status=skipped]")
    page.click("g.node[data-step=read]")
    panel = page.locator("[data-testid=step-panel]")
    error = panel.locator("[data-testid=step-error]")
    error.locator("pre").wait_for()
    panel.locator("[data-testid=step-params] pre").wait_for()
    shot(page, "execution-failed-step")

    assert "'no-such-file.txt' does not exist in the workspace" in error.text_content()
    assert '"path": "no-such-file.txt"' in panel.locator("[data-testid=step-params]").text_content()
    assert page.locator("[data-testid=execution-status]").get_attribute("data-status") == "failed"
    assert page.locator("button[data-testid=resume]").count() == 1  # operator, failed
    assert page.locator("button[data-testid=cancel]").count() == 0
    assert page.locator("rect.attempt[data-step=read][data-attempt='1']").count() == 1


def test_an_operator_cancels_a_running_execution(page: Any, dashboard: Dashboard) -> None:
    execution_id = dashboard.start("dash-slow")
    login(page, dashboard, "operator")
    page.goto(f"{dashboard.ui}#/executions/{execution_id}")
    page.wait_for_selector("g.node[data-step=nap][data-status=running]")

    page.click("button[data-testid=cancel]")
    page.wait_for_selector("[data-testid=execution-status][data-status=cancelled]", timeout=15_000)
    page.wait_for_selector("button[data-testid=cancel]", state="detached")

    assert dashboard.call("GET", f"/v1/executions/{execution_id}")["status"] == "cancelled"
    assert page.locator("g.node[data-step=nap]").get_attribute("data-status") == "cancelled"


def test_a_viewer_is_offered_no_run_form_and_no_cancel_or_resume(
    page: Any, dashboard: Dashboard, shot: Any
) -> None:
    failed = dashboard.start("dash-broken")
    assert dashboard.wait(failed) == "failed"
    login(page, dashboard, "viewer")

    page.goto(f"{dashboard.ui}#/workflows/dash-hello")
    page.wait_for_selector("body[data-view=workflow]")
    page.wait_for_selector("svg[data-testid=dag] g.node[data-step=join]")
    shot(page, "workflow-as-viewer")
    run_forms = page.locator("form[data-testid=run-form]").count()
    run_buttons = page.locator("button[data-testid=run]").count()

    page.goto(f"{dashboard.ui}#/executions/{failed}")
    page.wait_for_selector("body[data-view=execution]")
    page.wait_for_selector("[data-testid=execution-status][data-status=failed]")

    assert (run_forms, run_buttons) == (0, 0)
    assert page.locator("button[data-testid=resume]").count() == 0
    assert page.locator("button[data-testid=cancel]").count() == 0


def test_a_bad_token_is_refused_with_the_servers_sentence(page: Any, dashboard: Dashboard) -> None:
    unknown = "sire_000000000000_" + "x" * 43
    _, answer = request(dashboard.base, "GET", "/v1/me", unknown)

    page.goto(f"{dashboard.ui}#/executions")  # without a token: the login page
    page.wait_for_selector("body[data-view=login]")
    page.fill("input#token", unknown)
    page.click("button[data-testid=login]")
    error = page.locator("[data-testid=error]")
    error.wait_for()

    assert error.text_content() == answer["error"]
    assert page.evaluate("localStorage.getItem('sire.token')") is None
    assert page.locator("a[data-testid=nav-executions]").is_hidden()


def test_the_list_filters_by_status_and_shows_new_executions_live(
    page: Any, dashboard: Dashboard
) -> None:
    login(page, dashboard, "viewer")
    started = dashboard.start("dash-broken")
    row = page.locator(f"tr[data-testid=execution-row][data-id='{started}']")
    row.wait_for()  # no reload: the list re-fetches every 2 s
    page.wait_for_selector(
        f"tr[data-testid=execution-row][data-id='{started}'][data-status=failed]"
    )

    page.select_option("select[data-testid=filter-status]", "completed")
    row.wait_for(state="detached")
    statuses = page.locator("tr[data-testid=execution-row]").evaluate_all(
        "rows => rows.map(r => r.dataset.status)"
    )
    page.fill("input[data-testid=filter-workflow]", "dash-broken")
    page.wait_for_selector("[data-testid=empty]")

    assert set(statuses) <= {"completed"}
    assert "status=completed" in page.url
    assert page.locator("tr[data-testid=execution-row]").count() == 0


def test_a_token_revoked_while_in_use_returns_to_the_login_page(
    page: Any, dashboard: Dashboard
) -> None:
    minted = dashboard.call("POST", "/v1/tokens", "admin", {"role": "viewer", "name": "brief"})
    dashboard.tokens["brief"] = minted["token"]
    login(page, dashboard, "brief")

    dashboard.call("DELETE", f"/v1/tokens/{minted['id']}")
    page.wait_for_selector("body[data-view=login]")  # at the list's next re-fetch

    assert "revoked" in page.locator("[data-testid=error]").text_content()
    assert page.evaluate("localStorage.getItem('sire.token')") is None
