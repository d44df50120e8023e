"""The one "first error (and N more)" formatter shared by every validated file."""

from __future__ import annotations

from dynamo_plan.formats.schema_messages import error_summary


def test_error_summary_counts_the_rest() -> None:
    assert error_summary("f.yaml:3: spec: bad", 1) == "f.yaml:3: spec: bad"
    assert error_summary("f.yaml:3: spec: bad", 3) == "f.yaml:3: spec: bad (and 2 more)"
    assert error_summary("x", 2, "problem(s)") == "x (and 1 more problem(s))"
    assert (
        error_summary("x", 4, hint="dynamo-plan dgdr validate f.yaml")
        == "x (and 3 more: dynamo-plan dgdr validate f.yaml)"
    )
