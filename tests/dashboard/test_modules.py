"""Every dashboard module parses as an ES module (Node's own parser), and the page loads
only files that exist here: a syntax slip fails here, before a browser is involved."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from sire.server.app import DASHBOARD

MODULES = sorted(DASHBOARD.glob("*.js"))


@pytest.mark.parametrize("module", MODULES, ids=lambda path: path.name)
def test_each_module_parses(module: os.PathLike[str]) -> None:
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node is not installed; CI=true: the dashboard's modules must be checked")
        pytest.skip("node is not installed")
    with open(module, "rb") as source:
        checked = subprocess.run(
            [node, "--input-type=module", "--check"],
            stdin=source,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert checked.returncode == 0, checked.stderr


def test_every_import_and_script_names_a_file_of_the_dashboard() -> None:
    names = {path.name for path in DASHBOARD.iterdir()}
    texts = [path.read_text(encoding="utf-8") for path in [*MODULES, DASHBOARD / "index.html"]]
    wanted = {
        name
        for text in texts
        for name in re.findall(
            r"""(?:from\s+|import\s*\(\s*|src=|href=)['"]\./?([\w.-]+)['"]""", text
        )
    }
    assert wanted, "no import found: the pattern is wrong"
    assert wanted <= names, sorted(wanted - names)
