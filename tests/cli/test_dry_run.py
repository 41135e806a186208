"""`sire run --dry-run`: the plan of a run, with nothing called, started or stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from sire.engine.plan import Failed, Pending, build_plan
from sire.model.loader import parse_workflow

EXAMPLES = Path(__file__).parents[2] / "examples"


def plan_of(text: str, inputs: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    return build_plan(
        parse_workflow(textwrap.dedent(text), source="wf.yaml"), inputs or {}, **kwargs
    )


# --- the command --------------------------------------------------------------------


def test_dry_run_prints_the_plan_in_a_real_process_and_stores_nothing(
    sire_home: Path, tmp_path: Path
) -> None:
    argv = ["run", str(EXAMPLES / "hello.yaml"), "--dry-run", "-i", "name=Ada"]
    done = subprocess.run(
        [sys.executable, "-m", "sire", *argv],
        cwd=tmp_path,
        env={**os.environ, "SIRE_HOME": str(sire_home)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == (
        "dry run of greet-and-save: 2 steps in 2 layers; no tool is called and nothing is stored"
    )
    assert '    template: "Hello, Ada!"' in lines
    assert (
        '    content: pending (steps.greet.output.text) "{{ steps.greet.output.text }}\\n"' in lines
    )
    assert "checked: greet, save against sire:local" in lines
    assert not (tmp_path / "out").exists(), "file.write was called"
    assert not (sire_home / "sire.db").exists(), "the store was opened"


def test_workflow_run_takes_dry_run_too_and_json_gives_the_plan_as_data(
    sire: Any, sire_home: Path
) -> None:
    result = sire(
        "workflow", "run", str(EXAMPLES / "fan-out.yaml"), "--dry-run", "--json",
        "-i", "numbers=[2, 7]",
    )  # fmt: skip
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["dry_run"] is True
    assert doc["valid"] is True
    assert doc["inputs"] == {"numbers": [2, 7]}
    assert doc["layers"] == [["biggest", "smallest", "total"], ["report"]]
    assert doc["order"] == ["biggest", "smallest", "total", "report"]
    steps = {step["id"]: step for step in doc["steps"]}
    assert steps["biggest"]["params"] == {"data": [2, 7], "query": "max(@)"}
    assert steps["biggest"]["pending"] == {}
    assert steps["biggest"]["checked_on"] == "sire:local"
    report = steps["report"]
    assert report["layer"] == 1
    assert report["depends"] == ["biggest", "smallest", "total"]
    assert report["pending"] == {
        "params.template": [
            "steps.smallest.output.result",
            "steps.biggest.output.result",
            "steps.total.output.result",
        ]
    }
    assert report["params"]["template"].startswith("{{ inputs.numbers | length }} numbers")
    assert doc["outputs_pending"]["outputs.range[1]"] == ["steps.biggest.output.result"]
    assert doc["errors"] == []
    assert not (sire_home / "sire.db").exists()


def test_a_template_that_fails_with_the_inputs_exits_2_at_its_line(sire: Any, write: Any) -> None:
    path = write("""
        id: div
        inputs:
          n: {type: integer}
        steps:
          - id: a
            tool: sire:local/echo
            with:
              ratio: "{{ 10 / inputs.n }}"
    """)
    ok = sire("run", str(path), "--dry-run", "-i", "n=5")
    assert ok.code == 0, ok.err
    assert "    ratio: 2.0" in ok.out.splitlines()
    bad = sire("run", str(path), "--dry-run", "-i", "n=0")
    assert bad.code == 2
    assert "    ratio: fails: ZeroDivisionError: division by zero" in bad.out.splitlines()
    assert bad.err.strip() == (
        f"sire: error: {path}:9: template fails with these inputs: "
        "ZeroDivisionError: division by zero at steps[0].with.ratio"
    )


def test_builtin_arguments_and_output_fields_are_checked_offline(sire: Any, write: Any) -> None:
    path = write("""
        id: typos
        steps:
          - id: nap
            tool: sire:local/sleep
            with: {secs: 1}
          - id: greet
            tool: sire:local/text.template
            with: {template: hi}
          - id: save
            tool: sire:local/file.write
            with: {path: out.txt, content: "{{ steps.greet.output.txt }}"}
    """)
    result = sire("run", str(path), "--dry-run", "--json")
    assert result.code == 2
    errors = result.json()["errors"]
    assert [(e["line"], e["path"]) for e in errors] == [
        (6, "steps[0].with"),
        (12, "steps[2].with.content"),
    ]
    assert errors[0]["reason"] == (
        "the arguments of 'sire:local/sleep' do not match its inputSchema: "
        "missing argument 'seconds'"
    )
    assert errors[0]["hint"] == "did you mean 'seconds' instead of 'secs'?"
    assert errors[1]["reason"] == (
        "'steps.greet.output.txt' reads 'txt', which the outputSchema of "
        "'sire:local/text.template' does not declare (fields: text)"
    )
    assert errors[1]["hint"] == "did you mean 'text'?"


def test_mcp_steps_are_left_unchecked_offline_and_no_server_is_started(
    sire: Any, write: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    command = json.dumps([sys.executable, "-c", f"open({str(marker)!r}, 'w')"])
    path = write(f"""
        id: remote
        servers:
          calc: {{command: {command}}}
        steps:
          - {{id: sum, tool: "mcp:calc#add", with: {{a: 1, b: 2}}}}
    """)
    result = sire("run", str(path), "--dry-run")
    assert result.code == 0, result.err
    assert "    a: 1" in result.out.splitlines()
    assert (
        "not checked: sum (mcp: steps; --online starts or reaches their servers to check them)"
        in (result.out)
    )
    assert not marker.exists()


def test_secrets_stay_pending_and_are_shown_only_as_written(sire: Any, write: Any) -> None:
    path = write("""
        id: secret
        steps:
          - id: call
            tool: sire:local/echo
            with:
              auth: "Bearer {{ secrets.TOKEN }}"
              size: "{{ .secrets.TOKEN | length }}"
    """)
    result = sire("run", str(path), "--dry-run", "--json")
    assert result.code == 0, result.err
    (step,) = result.json()["steps"]
    assert step["params"] == {
        "auth": "Bearer {{ secrets.TOKEN }}",
        "size": "{{ .secrets.TOKEN | length }}",
    }
    assert step["pending"] == {
        "params.auth": ["secrets.TOKEN"],
        "params.size": ["secrets.TOKEN"],
    }


def test_validate_checks_builtin_arguments_written_as_constants_only(sire: Any, write: Any) -> None:
    path = write("""
        id: v
        inputs:
          text: {type: string, default: hi}
        steps:
          - id: a
            tool: sire:local/text.template
            with: {template: "{{ inputs.text }}"}
          - id: b
            tool: sire:local/text.template
            with: {template: 42}
    """)
    result = sire("workflow", "validate", str(path), "--json")
    assert result.code == 2
    (entry,) = result.json()["files"]
    assert [e["path"] for e in entry["errors"]] == ["steps[1].with.template"]
    assert entry["error"]["line"] == 11
    assert entry["error"]["reason"].endswith("argument 'template' must be string")


# --- the plan (pure) ----------------------------------------------------------------


def test_a_read_of_an_unfinished_step_is_pending_with_its_full_path() -> None:
    plan = plan_of("""
        id: p
        steps:
          - {id: a, tool: sire:local/echo}
          - id: b
            tool: sire:local/echo
            with:
              first: "{{ steps.a.output.entities[0].name }}"
              both: "{{ steps.a.output.x }}-{{ steps.a.output['y-z'] }}"
              constant: [1, "two"]
    """)
    params = plan.step("b").params
    assert params["first"] == Pending(
        "{{ steps.a.output.entities[0].name }}", ("steps.a.output.entities[0].name",)
    )
    assert params["both"].references == ("steps.a.output.x", "steps.a.output['y-z']")
    assert params["constant"] == [1, "two"]
    assert plan.order == ("a", "b")
    assert plan.layers == (("a",), ("b",))


def test_a_template_that_does_not_read_the_unknown_renders() -> None:
    plan = plan_of(
        """
        id: p
        inputs:
          given: {type: string}
        steps:
          - {id: a, tool: sire:local/echo}
          - id: b
            tool: sire:local/echo
            with:
              short: "{{ inputs.given or steps.a.output.x }}"
              native: "{{ [inputs.given, steps.a.output.x] }}"
        """,
        {"given": "here"},
    )
    params = plan.step("b").params
    assert params["short"] == "here"
    assert params["native"] == Pending(
        "{{ [inputs.given, steps.a.output.x] }}", ("steps.a.output.x",)
    )


def test_an_if_known_false_skips_the_step_and_its_dependents_unless_needs_any() -> None:
    text = """
        id: p
        inputs:
          go: {type: boolean}
        steps:
          - {id: a, tool: sire:local/echo, if: "{{ inputs.go }}"}
          - {id: b, tool: sire:local/echo, needs: [a]}
          - {id: c, tool: sire:local/echo, needs: [a], needs_any: true}
          - {id: d, tool: sire:local/echo, if: "{{ steps.a.output.ok }}"}
    """
    off = plan_of(text, {"go": False})
    assert off.step("a").when is False
    assert off.step("a").skipped == "'if' was false"
    assert off.step("b").skipped == "parent 'a' skipped"
    assert off.step("c").skipped == "no parent completed"
    on = plan_of(text, {"go": True})
    assert on.step("a").when is True
    assert [s.skipped for s in on.steps] == [None, None, None, None]
    assert on.step("d").when == Pending("{{ steps.a.output.ok }}", ("steps.a.output.ok",))
    assert on.step("b").params == Pending(None, ("steps.a.output",))


def test_for_each_items_are_rendered_when_known_and_pending_otherwise() -> None:
    plan = plan_of(
        """
        id: p
        inputs:
          names: {type: array}
        steps:
          - id: a
            tool: sire:local/echo
            for_each: "{{ inputs.names }}"
            with: {greeting: "hi {{ item }} ({{ index }})"}
          - id: b
            tool: sire:local/echo
            for_each: "{{ steps.a.output.items }}"
            with: {text: "{{ item.greeting }}"}
        """,
        {"names": ["Ada", "Bob"]},
    )
    a, b = plan.steps
    assert a.for_each == ["Ada", "Bob"]
    assert a.items == ({"greeting": "hi Ada (0)"}, {"greeting": "hi Bob (1)"})
    assert b.for_each == Pending("{{ steps.a.output.items }}", ("steps.a.output.items",))
    assert b.params == {"text": Pending("{{ item.greeting }}", ("item.greeting",))}


def test_a_failure_in_a_step_known_to_be_skipped_is_shown_but_not_a_problem() -> None:
    plan = plan_of(
        """
        id: p
        inputs:
          n: {type: integer}
        steps:
          - id: a
            tool: sire:local/echo
            if: "{{ inputs.n > 0 }}"
            with: {x: "{{ 1 / inputs.n }}"}
        """,
        {"n": 0},
    )
    assert isinstance(plan.step("a").params["x"], Failed)
    assert plan.problems == ()


def test_execution_fields_and_env_render_but_the_id_waits() -> None:
    plan = plan_of(
        """
        id: p
        steps:
          - id: a
            tool: sire:local/echo
            with:
              where: "{{ execution.workspace }}/out"
              who: "{{ execution.workflow_id }}"
              home: "{{ env.HOME }}"
              id: "{{ execution.id }}"
        """,
        env={"HOME": "/home/ada"},
        workspace="/ws",
    )
    params = plan.step("a").params
    assert params["where"] == "/ws/out"
    assert params["who"] == "p"
    assert params["home"] == "/home/ada"
    assert params["id"].references == ("execution.id",)


def test_an_input_not_given_is_pending() -> None:
    plan = plan_of("""
        id: p
        inputs:
          name: {type: string}
        steps:
          - {id: a, tool: sire:local/echo, with: {x: "{{ inputs.name | upper }}"}}
          - {id: b, tool: sire:local/echo}
    """)
    assert plan.inputs == {"name": Pending(None, ("inputs.name",))}
    assert plan.step("a").params == {"x": Pending("{{ inputs.name | upper }}", ("inputs.name",))}
    assert plan.step("b").params == {"name": Pending(None, ("inputs.name",))}
