"""YAML -> model -> YAML: the emitted text loads back to the same model, and is stable.

The emitted text of `fixtures/everything.yaml` is snapshot-tested against
`snapshots/everything.yaml`; after an intended change to the emitter, regenerate it with

    SIRE_UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/sdk/test_roundtrip.py

and review the diff. A missing snapshot is written on the first run.
"""

from __future__ import annotations

import os
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sire.model.emit import duration_value, emit_workflow
from sire.model.loader import parse_workflow
from sire.model.workflow import RetryPolicy, Workflow

from .conftest import EXAMPLES, FIXTURES

SNAPSHOT = Path(__file__).parent / "snapshots" / "everything.yaml"
WORKFLOWS = [
    *sorted(p for p in EXAMPLES.glob("*.yaml") if not p.name.endswith(".test.yaml")),
    FIXTURES / "everything.yaml",
    FIXTURES / "flaky.yaml",
]
bounded = settings(max_examples=100, deadline=None, derandomize=True, database=None)


def definition(workflow: Workflow) -> Workflow:
    """The workflow without what depends on its text: text, digest, source, lines."""
    return workflow._replace(text="", digest="", source=None, lines={})


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_an_emitted_workflow_loads_back_to_the_same_model(path: Path) -> None:
    model = parse_workflow(path.read_text())
    assert definition(parse_workflow(emit_workflow(model))) == definition(model)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_emitting_is_stable_after_one_round(path: Path) -> None:
    once = emit_workflow(parse_workflow(path.read_text()))
    assert emit_workflow(parse_workflow(once)) == once


def test_the_emitted_text_of_every_field_matches_the_snapshot() -> None:
    text = emit_workflow(parse_workflow((FIXTURES / "everything.yaml").read_text()))
    if os.environ.get("SIRE_UPDATE_SNAPSHOTS") or not SNAPSHOT.exists():
        SNAPSHOT.write_text(text)
    assert text == SNAPSHOT.read_text()


def test_the_emitted_text_reads_in_the_formats_order() -> None:
    text = emit_workflow(parse_workflow((FIXTURES / "everything.yaml").read_text()))
    top = [line.split(":")[0] for line in text.splitlines() if line[:1].isalpha()]
    assert top == [
        "id",
        "description",
        "inputs",
        "servers",
        "defaults",
        "max_concurrency",
        "steps",
        "outputs",
    ]
    add = text[text.index("  - id: add") : text.index("  - id: fan")]
    keys = [line.strip().split(":")[0] for line in add.splitlines() if line.startswith("    ")]
    keys = [k for k in keys if not k.startswith(("-", " "))]
    order = ["tool", "needs", "if", "with", "input_schema", "output_schema", "retry", "timeout"]
    assert [k for k in keys if k in order] == order


def test_a_retry_policy_shared_by_most_steps_is_written_as_the_default() -> None:
    text = """\
id: shared
defaults: {retry: {max_attempts: 4}, timeout: 10s}
steps:
  - {id: a, tool: sire:local/echo}
  - {id: b, tool: sire:local/echo}
  - {id: c, tool: sire:local/echo, retry: {max_attempts: 1}, timeout: 1s}
"""
    model = parse_workflow(text)
    emitted = emit_workflow(model)
    assert "defaults:\n  retry: {max_attempts: 4, initial_interval: 1s" in emitted
    assert "  timeout: 10s\n" in emitted
    assert emitted.count("retry:") == 2  # the default, and c opting out
    assert "    retry: {max_attempts: 1}\n    timeout: 1s\n" in emitted
    assert definition(parse_workflow(emitted)) == definition(model)
    assert model.step("c").retry == RetryPolicy()


def test_templates_are_double_quoted_and_multi_line_text_is_a_literal_block() -> None:
    model = parse_workflow(
        "id: t\nsteps:\n  - id: a\n    tool: sire:local/echo\n"
        '    with: {x: "{{ inputs }}", y: "one\\ntwo\\n"}\n'
    )
    emitted = emit_workflow(model)
    assert 'x: "{{ inputs }}"' in emitted
    assert "y: |\n        one\n        two\n" in emitted


@pytest.mark.parametrize(
    ("seconds", "written"),
    [
        (0.0, "0s"),
        (0.25, "250ms"),
        (30.0, "30s"),
        (60.0, "1m"),
        (90.0, "1m30s"),
        (3600.0, "1h"),
        (3661.0, "1h1m1s"),
        (1.0001, 1.0001),
        (1e-7, 1e-7),
    ],
)
def test_durations_are_written_as_people_write_them_when_exact(
    seconds: float, written: str | float
) -> None:
    assert duration_value(seconds) == written


# Text without `{` (no accidental templates) and without surrogates (not UTF-8).
text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="{"), max_size=30)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
durations = st.floats(min_value=0, max_value=1e7, allow_nan=False, allow_infinity=False)
ids = st.text(string.ascii_letters + "_", min_size=1, max_size=8)


@bounded
@given(
    params=st.dictionaries(text, values, max_size=5),
    timeout=st.none() | durations,
    interval=durations,
    attempts=st.integers(1, 1000),
    description=text,
    step_id=ids,
)
def test_any_step_data_survives_the_round_trip(
    params: dict[str, Any],
    timeout: float | None,
    interval: float,
    attempts: int,
    description: str,
    step_id: str,
) -> None:
    from sire.model.emit import dump_yaml

    step: dict[str, Any] = {
        "id": step_id,
        "tool": "sire:local/echo",
        "description": description,
        "with": params,
        "retry": {"max_attempts": attempts, "initial_interval": interval},
    }
    if timeout is not None:
        step["timeout"] = timeout
    model = parse_workflow(dump_yaml({"id": "prop", "steps": [step]}))
    emitted = emit_workflow(model)
    assert definition(parse_workflow(emitted)) == definition(model)
    assert emit_workflow(parse_workflow(emitted)) == emitted
