"""The whole bad-input case table: every class, in the issue's order."""

from __future__ import annotations

from collections import Counter

from tests.fuzz import cases_inputs, cases_outputs, cases_settings
from tests.fuzz.harness import CLASSES, Case


def all_cases() -> list[Case]:
    cases = [*cases_inputs.cases(), *cases_settings.cases(), *cases_outputs.cases()]
    ids = Counter(c.id for c in cases)
    duplicates = [i for i, n in ids.items() if n > 1]
    assert not duplicates, f"duplicate case ids: {duplicates}"
    assert {c.cls for c in cases} <= set(CLASSES)
    return sorted(cases, key=lambda c: CLASSES.index(c.cls))


CASES = all_cases()
