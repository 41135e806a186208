"""Structured logs: the cost of one JSON log line as the engine emits it (an info
`sire.step.completed` with its fields, through the standard library and structlog's
processors), beside a floor measured in the same run: `json.dumps` of the same fields
with a timestamp, written to the same stream. `sire agent` logs at info by default,
several lines an execution, so this is on its per-execution path.
"""

from __future__ import annotations

import datetime
import json
import time

from _common import best_of, parse_args, report
from sire.observability import logging as logs

FIELDS = {
    "workflow_id": "greet-and-save",
    "execution_id": "01M8B70Z589VXN96HPPQBHCTA4",
    "step_id": "greet",
    "attempt": 1,
    "duration_ms": 3.61,
}


def sire_line(n: int, stream: object) -> float:
    log = logs.Log("sire.engine")
    start = time.perf_counter()
    for _ in range(n):
        log.info("sire.step.completed", **FIELDS)
    return (time.perf_counter() - start) / n


def floor_line(n: int, stream: object) -> float:
    write = stream.write  # type: ignore[attr-defined]
    flush = stream.flush  # type: ignore[attr-defined]
    start = time.perf_counter()
    for _ in range(n):
        now = datetime.datetime.now(datetime.UTC).isoformat()
        event = {"event": "sire.step.completed", "level": "info", **FIELDS, "timestamp": now}
        write(json.dumps(event) + "\n")
        flush()
    return (time.perf_counter() - start) / n


def main() -> None:
    args = parse_args(__doc__ or "")
    n, repeats = (2_000, 2) if args.quick else (20_000, 5)
    with open("/dev/null", "w") as stream:
        logs.configure("json", "info", stream=stream)
        sire_line(200, stream)  # builds the renderer, warms the caches
        line = best_of(repeats, lambda: sire_line(n, stream))
        floor = best_of(repeats, lambda: floor_line(n, stream))
    report("JSON log line (info, 5 fields)", line, "us", floor, "json.dumps + write", "-")


if __name__ == "__main__":
    main()
