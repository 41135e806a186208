"""The `sire` entry point and its one error boundary: errors -> one line and an exit status.

0 completed · 1 failed or cancelled · 2 invalid definition, inputs or command line ·
3 environment (store, config) · 130 interrupted (resumable). Tracebacks only with
`--verbose`; with `--json` the error is the one JSON document printed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

EXIT_INVALID = 2
EXIT_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `sire` command line with `argv` (default: `sys.argv[1:]`); return the status."""
    args = list(sys.argv[1:] if argv is None else argv)
    options = args[: args.index("--")] if "--" in args else args
    verbose = "--verbose" in options or "-v" in options
    as_json = "--json" in options
    code = _run(args, verbose=verbose, as_json=as_json)
    if argv is None:
        sys.exit(code)
    return code


def _run(args: list[str], *, verbose: bool, as_json: bool) -> int:
    try:
        from typer._click.exceptions import NoArgsIsHelpError, UsageError
        from typer.exceptions import Abort, Exit
        from typer.main import get_command

        if args[:1] == ["run"]:  # the hot path imports and builds only its own command
            from sire.cli.run import run_app

            command, args, name = get_command(run_app), args[1:], "sire run"
        else:
            from sire.cli.app import app

            command, name = get_command(app), "sire"
        result = command.main(args=args, prog_name=name, standalone_mode=False)
        return result if isinstance(result, int) else 0
    except KeyboardInterrupt:
        print("sire: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exit as exc:
        return int(exc.exit_code)
    except NoArgsIsHelpError as exc:
        print(exc.format_message())
        return EXIT_INVALID
    except UsageError as exc:
        return _fail(exc.format_message(), "UsageError", EXIT_INVALID, as_json=as_json)
    except Abort:
        return EXIT_INTERRUPTED
    except Exception as exc:
        from sire.errors import DefinitionError, SireError

        if verbose:
            import traceback

            traceback.print_exc()
        if isinstance(exc, SireError):
            extra = (
                {"file": exc.file, "line": exc.line, "path": exc.path}
                if isinstance(exc, DefinitionError)
                else {}
            )
            return _fail(str(exc), type(exc).__name__, exc.exit_code, as_json=as_json, **extra)
        message = f"internal error: {type(exc).__name__}: {exc}"
        if not verbose:
            message += " (run with --verbose for the traceback)"
        return _fail(message, type(exc).__name__, 1, as_json=as_json)


def _fail(message: str, kind: str, code: int, *, as_json: bool, **extra: object) -> int:
    if as_json:
        document = {"error": {"type": kind, "message": message, **extra}, "exit_code": code}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    print(f"sire: error: {message}", file=sys.stderr)
    return code
