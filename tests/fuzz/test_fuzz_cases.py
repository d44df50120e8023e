"""The bad-input case table (tests/fuzz/table.py) as tests: one test per case.

Each case runs as a real process and is judged from outside (tests/fuzz/harness.py): no
traceback, no hang, an exit code the issue documents, no partial file, one readable ``error:``
line, and the case's own checks. tests/fuzz/conftest.py prints the per-class counts at the end;
``python -m tests.fuzz.report`` prints the same without pytest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from tests.fuzz.harness import Case, run_case
from tests.fuzz.table import CASES
from tests.fuzz.world import World, world


@pytest.fixture(scope="session")
def fuzz_world() -> Iterator[World]:
    with world() as w:
        yield w


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(
    case: Case, fuzz_world: World, record_property: Callable[[str, object], None]
) -> None:
    outcome = run_case(case, fuzz_world)
    kinds = sorted(k for k, msgs in outcome.problems.items() if msgs)
    record = {"cls": case.cls, "kinds": kinds, "seconds": outcome.run.elapsed_s}
    record_property("fuzz_case", json.dumps(record))
    assert outcome.ok, outcome.summary()
