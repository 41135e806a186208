"""mypy knows the fields of a typed tool's output: a misspelt one is a type error.

Runs mypy in a subprocess on a small file of typed SDK use (about 5-10 s, cold cache).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SNIPPET = textwrap.dedent(
    """\
    from sire.sdk import Input, Ref, Workflow, item
    from sire.sdk.tools import file_write, text_template

    wf = Workflow("typed", inputs={"names": Input(list[str])})
    greet = wf.step("greet", text_template(template=f"Hello, {wf.inputs.names}!"))
    text: Ref = greet.output.text
    each = wf.step("each", file_write(path=f"{item}.txt", content=text), for_each=wf.inputs.names)
    items: Ref = each.output.items
    generic = wf.step("echo", "sire:local/echo", {"a": 1}, needs=[greet, each])
    anything: Ref = generic.output.whatever.deeper["key"]
    typo = greet.output.txt
    wrong = each.output.path
    """
)


def test_a_misspelt_field_of_a_typed_output_is_a_type_error(tmp_path: Path) -> None:
    (tmp_path / "snippet.py").write_text(SNIPPET)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            "--no-error-summary",
            "--hide-error-context",
            "snippet.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    errors = result.stdout.splitlines()
    assert errors == [
        'snippet.py:11: error: "TemplateOutput" has no attribute "txt"; maybe "text"?'
        "  [attr-defined]",
        'snippet.py:12: error: "Items" has no attribute "path"  [attr-defined]',
    ], result.stdout + result.stderr
