"""Durations as workflow files write them, and as Sire prints them."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sire.model.durations import format_duration, parse_duration

bounded = settings(max_examples=50, deadline=None, derandomize=True, database=None)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1d", 86400.0),
        ("1m30s", 90.0),
        ("1h2m3s", 3723.0),
        ("1.5s", 1.5),
        ("0.5m", 30.0),
        ("2", 2.0),
        ("2.5", 2.5),
        ("0", 0.0),
        (" 30s ", 30.0),
        (5, 5.0),
        (0.25, 0.25),
        (0, 0.0),
    ],
)
def test_a_duration_is_read_in_seconds(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)
    assert isinstance(parse_duration(text), float)


@bounded
@given(st.integers(min_value=0, max_value=10**9))
def test_whole_seconds_read_back_as_themselves(n: int) -> None:
    assert parse_duration(f"{n}s") == n
    assert parse_duration(str(n)) == n
    assert parse_duration(n) == n


@bounded
@given(st.integers(0, 99), st.integers(0, 59), st.integers(0, 59), st.integers(0, 999))
def test_units_add_up(h: int, m: int, s: int, ms: int) -> None:
    expected = h * 3600 + m * 60 + s + ms / 1000
    assert parse_duration(f"{h}h{m}m{s}s{ms}ms") == pytest.approx(expected)


@pytest.mark.parametrize(
    "value",
    [
        -1,
        -0.5,
        "-1",
        "-5s",
        True,
        False,
        "",
        "soon",
        "3x",
        "s",
        "5 s",
        "1m 30s",
        "5sec",
        "1.s",
        None,
        [5],
        {"seconds": 5},
    ],
)
def test_anything_else_is_not_a_duration(value: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


@pytest.mark.parametrize("value", [math.nan, "nan", "NaN"])
def test_nan_is_not_a_duration(value: object) -> None:
    try:
        parsed = parse_duration(value)
    except ValueError:
        return
    raise AssertionError(f"parse_duration({value!r}) returned {parsed!r}")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0ms"),
        (0.0004, "0ms"),
        (0.85, "850ms"),
        (1, "1.0s"),
        (12.34, "12.3s"),
        (59.9, "59.9s"),
        (60, "1m00s"),
        (245, "4m05s"),
        (3599, "59m59s"),
        (3600, "1h00m"),
        (3661, "1h01m"),
        (90000, "25h00m"),
    ],
)
def test_a_duration_is_printed_the_short_way(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(("seconds", "text"), [(0.9996, "1.0s"), (59.96, "1m00s")])
def test_rounding_never_prints_a_value_that_belongs_to_the_next_unit(
    seconds: float, text: str
) -> None:
    assert format_duration(seconds) == text


@bounded
@given(st.floats(min_value=0, max_value=10**7, allow_nan=False))
def test_printing_never_fails_and_never_goes_negative(seconds: float) -> None:
    text = format_duration(seconds)
    assert text
    assert not text.startswith("-")
