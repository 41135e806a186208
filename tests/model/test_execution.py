"""Execution ids are ULIDs; statuses know when they are finished."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sire.model.execution import (
    Execution,
    ExecutionStatus,
    StepState,
    StepStatus,
    new_execution_id,
)

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ULID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")
NOW = 1_764_000_000.123  # a fixed instant: ids are tested against it, not the clock

bounded = settings(max_examples=50, deadline=None, derandomize=True, database=None)


def timestamp_ms(ulid: str) -> int:
    value = 0
    for char in ulid[:10]:
        value = value * 32 + CROCKFORD.index(char)
    return value


def test_an_execution_id_is_26_characters_of_crockford_base32() -> None:
    ulid = new_execution_id(NOW)
    assert len(ulid) == 26
    assert ULID.fullmatch(ulid)
    assert not set(ulid) & set("ILOU")


def test_an_execution_id_starts_with_its_creation_time_in_milliseconds() -> None:
    assert timestamp_ms(new_execution_id(NOW)) == int(NOW * 1000)
    assert new_execution_id(0.0)[:10] == "0000000000"


def test_without_now_the_id_is_taken_at_the_current_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import sire.model.execution as execution

    monkeypatch.setattr(execution.time, "time", lambda: NOW)
    assert timestamp_ms(new_execution_id()) == int(NOW * 1000)


@bounded
@given(
    st.lists(st.integers(min_value=0, max_value=2**48 - 1), min_size=2, max_size=20, unique=True)
)
def test_ids_sort_by_creation_time(millis: list[int]) -> None:
    ids = {new_execution_id(ms / 1000): ms for ms in millis}
    assert [ids[u] for u in sorted(ids)] == sorted(millis)


def test_ids_taken_in_the_same_millisecond_are_unique() -> None:
    ids = {new_execution_id(NOW) for _ in range(1000)}
    assert len(ids) == 1000
    assert len({u[:10] for u in ids}) == 1


def test_ids_taken_one_after_another_are_unique() -> None:
    assert len({new_execution_id() for _ in range(1000)}) == 1000


def test_finished_statuses_are_the_terminal_ones() -> None:
    assert {s for s in ExecutionStatus if s.finished} == {
        ExecutionStatus.COMPLETED,
        ExecutionStatus.FAILED,
        ExecutionStatus.CANCELLED,
    }
    assert {s for s in StepStatus if s.finished} == {
        StepStatus.COMPLETED,
        StepStatus.FAILED,
        StepStatus.SKIPPED,
        StepStatus.CANCELLED,
    }


def test_statuses_are_their_lowercase_names() -> None:
    assert all(s.value == s.name.lower() for s in ExecutionStatus)
    assert all(s.value == s.name.lower() for s in StepStatus)
    assert StepStatus("skipped") is StepStatus.SKIPPED


def test_a_new_execution_and_step_start_pending() -> None:
    execution = Execution(
        id="x", workflow_id="w", workflow_hash="h", created_at=NOW, updated_at=NOW
    )
    assert execution.status is ExecutionStatus.PENDING
    assert execution.step_states == {}
    assert StepState().status is StepStatus.PENDING
    assert StepState().attempts == 0
    with pytest.raises(AttributeError):
        StepState().attempts = 1  # type: ignore[misc]
