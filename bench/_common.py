"""Shared by the bench scripts: argument parsing, timing, and printing a figure beside its floor."""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import time
from collections.abc import Callable


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, few repeats: proves it runs (CI)"
    )
    return parser.parse_args()


def best_of(repeats: int, fn: Callable[[], float]) -> float:
    """The smallest of `repeats` measurements: the least disturbed by a noisy machine."""
    return min(fn() for _ in range(repeats))


def median_of(repeats: int, fn: Callable[[], float]) -> float:
    return statistics.median(fn() for _ in range(repeats))


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def report(
    name: str, value: float, unit: str, floor: float | None, floor_name: str, target: str
) -> None:
    """One line: the figure, its floor measured in the same run, and the target."""
    scale = {"s": 1.0, "ms": 1e3, "us": 1e6}[unit]
    line = f"{name:<54} {value * scale:10.2f} {unit}"
    if floor is not None:
        line += f"   floor {floor * scale:9.2f} {unit} ({floor_name})"
    line += f"   target {target}"
    print(line, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    """Wait until a bench server started as `process` accepts connections on `port`."""
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the bench server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
