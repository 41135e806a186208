"""Durations as workflow files write them: `250ms`, `30s`, `5m`, `1h`, `1m30s`, or seconds."""

from __future__ import annotations

import math
import re

# ASCII digits only, as in the JSON Schema pattern (Python's `\d` also reads other scripts).
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", re.ASCII)
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+", re.ASCII)
_NUMBER = re.compile(r"\d+(?:\.\d+)?", re.ASCII)
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

#: The JSON Schema pattern of a duration string: the strings `parse_duration` reads.
PATTERN = r"^(\d+(\.\d+)?|(\d+(\.\d+)?(ms|s|m|h|d))+)$"


def parse_duration(value: object) -> float:
    """Return `value` in seconds.

    Raises:
        ValueError: `value` is neither a finite non-negative number nor a duration string.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            raise ValueError("a number this large is not a duration") from None
        if seconds < 0:
            raise ValueError(f"{value} is negative; a duration is at least 0")
        if not math.isfinite(seconds):  # NaN compares false with everything, so check here
            raise ValueError(f"{value} is not a finite duration")
        return seconds
    if isinstance(value, str):
        text = value.strip()
        if _WHOLE.fullmatch(text):
            return parse_duration(sum(float(n) * _UNIT[u] for n, u in _PART.findall(text)))
        if _NUMBER.fullmatch(text):
            return parse_duration(float(text))
    raise ValueError(f"{value!r} is not a duration (examples: 250ms, 30s, 5m, 1h, 1m30s)")


def format_duration(seconds: float) -> str:
    """Format seconds the short way a person reads them: `850ms`, `12.3s`, `4m05s`."""
    # The unit is chosen by the rounded value, so 0.9996 is `1.0s`, never `1000ms`.
    millis = f"{seconds * 1000:.0f}"
    if float(millis) < 1000:
        return f"{millis}ms"
    tenths = f"{seconds:.1f}"
    if float(tenths) < 60:
        return f"{tenths}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
