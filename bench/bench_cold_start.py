"""(e) Cold start of `sire run` on a one-step workflow, vs `python -c "import asyncio, sqlite3"`.

Median of N fresh processes with an existing $SIRE_HOME (the workflow cache is warm);
the first-ever run (empty $SIRE_HOME) is reported apart. Bytecode caching is on for
the children, as it is for any installed package: PYTHONDONTWRITEBYTECODE is removed
from their environment. Target: <= 2x the floor.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import parse_args, report

ONE_STEP = 'id: one\nsteps:\n  - {id: hello, tool: "sire:local/echo", with: {message: hi}}\n'
TEMPLATED = (
    "id: one-templated\ninputs:\n  name: {type: string, default: world}\n"
    'steps:\n  - {id: hello, tool: "sire:local/text.template",'
    ' with: {template: "Hello, {{ inputs.name }}!"}}\n'
)


def run(command: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{command} exited {done.returncode}")
    return elapsed


def main() -> None:
    args = parse_args(__doc__ or "")
    repeats = 3 if args.quick else 10
    sire = shutil.which("sire", path=str(Path(sys.executable).parent)) or "sire"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["SIRE_HOME"] = str(root / "home")
        (root / "one.yaml").write_text(ONE_STEP)
        (root / "templated.yaml").write_text(TEMPLATED)
        run([sys.executable, "-c", "pass"], env, root)  # warm the OS caches alike
        first = run([sire, "run", "one.yaml"], env, root)
        floor = statistics.median(
            run([sys.executable, "-c", "import asyncio, sqlite3"], env, root)
            for _ in range(repeats)
        )
        warm = statistics.median(run([sire, "run", "one.yaml"], env, root) for _ in range(repeats))
        run([sire, "run", "templated.yaml"], env, root)
        templated = statistics.median(
            run([sire, "run", "templated.yaml"], env, root) for _ in range(repeats)
        )
    floor_name = 'python -c "import asyncio, sqlite3"'
    report("(e) cold sire run, one echo step", warm, "ms", floor, floor_name, "<= 2x floor")
    print(f"{'    ratio to floor':<54} {warm / floor:10.2f} x")
    report("    the same, templated step (loads Jinja2)", templated, "ms", floor, floor_name, "-")
    report("    first-ever run (empty $SIRE_HOME)", first, "ms", None, "", "-")


if __name__ == "__main__":
    main()
