"""Durations as workflow files write them: `250ms`, `30s`, `5m`, `1h`, `1m30s`, or seconds."""

from __future__ import annotations

import math
import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+\Z")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

#: The JSON Schema pattern of a duration string: exactly the strings `parse_duration` reads.
PATTERN = r"^(\d+(\.\d+)?|(\d+(\.\d+)?(ms|s|m|h|d))+)$"


def parse_duration(value: object) -> float:
    """Return `value` in seconds.

    Raises:
        ValueError: `value` is neither a non-negative number nor a duration string.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        if not value >= 0:  # also false for NaN
            raise ValueError(f"{value} is negative or not a number; a duration is at least 0")
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a finite duration")
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if _WHOLE.match(text):
            return parse_duration(sum(float(n) * _UNIT[u] for n, u in _PART.findall(text)))
        if _NUMBER.fullmatch(text):
            return parse_duration(float(text))
    raise ValueError(f"{value!r} is not a duration (examples: 250ms, 30s, 5m, 1h, 1m30s)")


def format_duration(seconds: float) -> str:
    """Format seconds the short way a person reads them: `850ms`, `12.3s`, `4m05s`."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
