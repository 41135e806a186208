"""A pytest plugin that collects workflow test files (`*.test.yaml`) as pytest tests.

Opt in from a conftest.py (`pytest_plugins = ["sire.testing.pytest_plugin"]`) or on the
command line (`pytest -p sire.testing.pytest_plugin`); each test of a file is then one
pytest item, run exactly as `sire test` runs it, its unmet expectations the report.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sire.testing.runner import SUFFIXES, WorkflowTest, load_tests, run_test


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.name.endswith(SUFFIXES):
        collected: pytest.Collector = WorkflowTestFile.from_parent(parent, path=file_path)
        return collected
    return None


class WorkflowTestFailed(Exception):
    """A workflow test missed expectations; its args are the sentences saying which."""


class WorkflowTestFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        for test in load_tests(self.path):
            yield WorkflowTestItem.from_parent(self, name=test.name, test=test)


class WorkflowTestItem(pytest.Item):
    def __init__(self, *, test: WorkflowTest, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.test = test

    def runtest(self) -> None:
        result = run_test(self.test)
        if not result.passed:
            raise WorkflowTestFailed(*result.failures)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, WorkflowTestFailed):
            return "\n".join(str(a) for a in excinfo.value.args)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"workflow test: {self.name}"
