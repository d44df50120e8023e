"""Result tables: plain numbers (never ``1.399e+04``), nothing cut in a file or a pipe."""

from __future__ import annotations

import io

import numpy as np
import pytest
from rich.console import Console

from dynamo_plan.cli.output import OutputFormat, emit, plain_number, simple_table


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (13990.4, "13990"),
        (1_234_567.8, "1234568"),
        (1.39904, "1.399"),
        (0.0123456, "0.01235"),
        (2.0, "2"),
        (100.0, "100"),
        (-0.2545, "-0.2545"),
        (1e-9, "0"),
        (-1e-9, "0"),
        (0.0, "0"),
        (float("nan"), "—"),
        (float("inf"), "—"),
    ],
)
def test_plain_number(value: float, text: str) -> None:
    assert plain_number(value) == text


def _render(table: object, width: int) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(table)
    return out.getvalue()


def test_table_cells_are_plain_numbers_right_aligned() -> None:
    table = simple_table(
        "t",
        ["name", "tokens/s/GPU", "GPU-hours"],
        [["a", 13990.4, np.float64(0.01576)], ["b", 7, None]],
    )
    text = _render(table, 80)
    assert "13990" in text and "0.01576" in text and "—" in text
    assert "e+" not in text and "e-" not in text
    row = next(line for line in text.splitlines() if line.startswith("b"))
    assert row.rstrip().endswith("—") and "      7" in row  # right-aligned under its header


def test_emit_to_a_pipe_never_cuts_a_wide_table(capsys: pytest.CaptureFixture[str]) -> None:
    columns = [f"column number {i}" for i in range(12)]
    row = [f"value-{i}-long" for i in range(12)]
    emit({"x": 1}, OutputFormat.table, table=lambda: simple_table(None, columns, [row]))
    out = capsys.readouterr().out
    assert "…" not in out
    for cell in row:
        assert cell in out
