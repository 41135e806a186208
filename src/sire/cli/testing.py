"""`sire test` (run workflow test files, report like a test runner) and `sire init`."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from sire.cli.common import JsonFlag, VerboseFlag, emit_json

#: `sire test` found nothing to run (as pytest's exit status 5).
NO_TESTS = 5


def run_tests(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Test files (*.test.yaml) or directories to search [default: here].",
            metavar="[PATH]...",
            show_default=False,
        ),
    ] = None,
    keyword: Annotated[
        str | None,
        typer.Option("-k", help="Run only tests whose name contains this.", show_default=False),
    ] = None,
    exitfirst: Annotated[
        bool, typer.Option("--exitfirst", "-x", help="Stop at the first failure.")
    ] = False,
    as_json: JsonFlag = False,
    verbose: VerboseFlag = False,
) -> None:
    """Run workflow tests: inputs, mocks and expectations in *.test.yaml files."""
    from sire.errors import InputError
    from sire.testing.runner import TestResult, discover, load_tests, run_test

    files = discover(paths or [Path.cwd()])
    results: list[TestResult] = []
    errors: list[str] = []
    started = time.perf_counter()
    for file in files:
        try:
            tests = load_tests(file)
        except InputError as exc:
            errors.append(str(exc))
            if not as_json:
                print(f"{file}\n  ERROR {exc}")
            continue
        tests = [t for t in tests if keyword is None or keyword in t.name]
        if tests and not as_json:
            print(_shown(file))
        for case in tests:
            result = run_test(case)
            results.append(result)
            if not as_json:
                _print_result(result)
            if exitfirst and not result.passed:
                break
        if exitfirst and any(not r.passed for r in results):
            break
    elapsed = time.perf_counter() - started
    passed = sum(r.passed for r in results)
    failed = len(results) - passed
    if as_json:
        emit_json(
            {
                "passed": passed,
                "failed": failed,
                "errors": errors,
                "duration_ms": round(elapsed * 1000, 3),
                "tests": [_document(r) for r in results],
            }
        )
    else:
        parts = [f"{passed} passed"] + ([f"{failed} failed"] if failed else [])
        parts += [f"{len(errors)} errors"] if errors else []
        print(f"\n{', '.join(parts)} in {elapsed:.2f}s")
    if errors:
        raise typer.Exit(2)
    if not results:
        where = ", ".join(str(p) for p in paths or [Path(".")])
        print(f"sire: no workflow tests (*.test.yaml) found in {where}", file=sys.stderr)
        raise typer.Exit(NO_TESTS)
    raise typer.Exit(1 if failed else 0)


def _shown(file: Path) -> str:
    try:
        return str(file.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(file)


def _print_result(result: Any) -> None:
    took = f"{result.seconds * 1000:.0f} ms"
    if result.passed:
        print(f"  PASS  {result.test.name}  ({took})")
        return
    print(f"  FAIL  {result.test.name}  ({took})")
    for failure in result.failures:
        print(f"        {failure}")


def _document(result: Any) -> dict[str, Any]:
    return {
        "file": str(result.test.file),
        "name": result.test.name,
        "passed": result.passed,
        "failures": result.failures,
        "duration_ms": round(result.seconds * 1000, 3),
        "execution_id": None if result.execution is None else result.execution.id,
    }


_WORKFLOW = """\
# {name}: greets someone and saves the greeting.
#   sire run {name}.yaml -i name=Ada      sire test {name}.test.yaml
id: {name}
inputs:
  name: {{type: string, default: world}}
steps:
  - id: greet
    tool: sire:local/text.template
    with: {{template: "Hello, {{{{ inputs.name }}}}!"}}
  - id: save
    tool: sire:local/file.write
    with:
      path: out/greeting.txt
      content: "{{{{ steps.greet.output.text }}}}\\n"
    retry: {{max_attempts: 3, initial_interval: 1s}}
outputs:
  greeting: "{{{{ steps.greet.output.text }}}}"
"""

_TEST = """\
# Tests of {name}.yaml: `sire test` runs them (each in a store in memory and a
# temporary workspace; retry waits are skipped).
workflow: {name}.yaml
tests:
  - name: greets by name
    inputs: {{name: Ada}}
    expect:
      status: completed
      outputs: {{greeting: "Hello, Ada!"}}
      steps: {{greet: completed, save: completed}}

  - name: retries a failing save, then succeeds
    mocks:
      save:
        - {{error: disk full}}
        - {{output: {{path: out/greeting.txt}}}}
    expect:
      outputs: {{greeting: "Hello, world!"}}
      steps:
        save: {{status: completed, attempts: 2, mocked: true}}
"""


def init(
    directory: Annotated[
        Path, typer.Argument(help="Where to write the files [default: here].", metavar="[DIR]")
    ] = Path("."),
    name: Annotated[str, typer.Option("--name", help="The workflow's id and file name.")] = "hello",
    verbose: VerboseFlag = False,
) -> None:
    """Scaffold a workflow and a test of it: NAME.yaml and NAME.test.yaml."""
    from sire.errors import InputError
    from sire.model.workflow import WORKFLOW_ID_PATTERN

    if not re.match(WORKFLOW_ID_PATTERN, name):
        raise InputError(
            f"--name {name}: a workflow id is lower-case letters, digits, '_', '.' and '-', "
            "starting with a letter or digit"
        )
    files = {
        directory / f"{name}.yaml": _WORKFLOW.format(name=name),
        directory / f"{name}.test.yaml": _TEST.format(name=name),
    }
    for path in files:
        if path.exists():
            raise InputError(f"{path}: already exists; sire init writes only new files")
    directory.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    print(f"next: sire run {directory / name}.yaml -i name=Ada   and   sire test {directory}")
