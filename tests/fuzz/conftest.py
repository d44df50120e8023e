"""Print the bad-input table's per-class counts at the end of a pytest run that ran its cases.

The counts travel in each report's ``user_properties`` (``fuzz_case``), so they add up under
pytest-xdist too.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

_RECORDS: list[tuple[str, set[str], float]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call":
        return
    for name, value in report.user_properties:
        if name == "fuzz_case":
            data = json.loads(str(value))
            _RECORDS.append((data["cls"], set(data["kinds"]), float(data["seconds"])))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _RECORDS:
        return
    from tests.fuzz.report import counts_table

    terminalreporter.section("bad-input cases by class")
    terminalreporter.write_line(counts_table(_RECORDS))
