"""Shared CLI plumbing: the ``-o/--output`` option, result rendering, the stderr console.

Results go to stdout (table, JSON or YAML); logs, warnings and progress (see
:mod:`dynamo_plan.cli.progress_views`) go to stderr. numpy and yaml are imported only when a
result is printed, so ``--help`` starts without them.
"""

from __future__ import annotations

import json
import math
import numbers
import sys
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from rich.table import Table

err_console = Console(stderr=True, highlight=False)


class OutputFormat(StrEnum):
    """How a command prints its result."""

    table = "table"
    json = "json"
    yaml = "yaml"


OutputOption = Annotated[
    OutputFormat,
    typer.Option(
        "--output", "-o", metavar="FORMAT", help="Result format on stdout: table, json or yaml."
    ),
]


def to_plain(value: Any) -> Any:
    """Convert numpy scalars/arrays, tuples and non-finite floats into JSON-safe Python values."""
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    np = sys.modules.get("numpy")  # no numpy value can exist before numpy is imported
    if np is not None and isinstance(value, np.ndarray):
        return [to_plain(v) for v in value.tolist()]
    if np is not None and isinstance(value, np.generic):
        return to_plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def emit(data: Any, fmt: OutputFormat, table: Callable[[], Any] | None = None) -> None:
    """Print ``data`` to stdout in ``fmt``; ``table`` builds the rich renderable for table output,
    drawn at the terminal's width, or, into a file or a pipe, at its own width (never cut)."""
    plain = to_plain(data)
    if fmt is OutputFormat.json:
        sys.stdout.write(json.dumps(plain, indent=2) + "\n")
    elif fmt is OutputFormat.yaml:
        import yaml

        sys.stdout.write(yaml.safe_dump(plain, sort_keys=False))
    else:
        console = Console(soft_wrap=True)
        renderable = table() if table is not None else plain
        if not console.is_terminal:  # a file or a pipe: the table's own width, never cut
            natural = console.measure(renderable, options=console.options.update_width(10_000))
            console = Console(soft_wrap=True, width=max(console.width, natural.maximum))
        console.print(renderable)


def simple_table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    caption: str | None = None,
) -> Table:
    """A rich table with right-aligned numeric cells, shown as plain numbers (:func:`plain_number`);
    units belong in the column headers. ``caption`` is printed under the table."""
    from rich import box
    from rich.table import Table

    tbl = Table(
        title=title,
        title_justify="left",
        caption=caption,
        caption_justify="left",
        box=box.SIMPLE_HEAD,  # a rule under the header; one space between columns
        padding=(0, 0),
        show_edge=False,
    )
    rows = [list(r) for r in rows]
    for i, name in enumerate(columns):
        cells = [r[i] for r in rows if r[i] is not None]  # None prints as — in any column
        numeric = bool(cells) and all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) for v in cells
        )
        texts = (name, *(_cell(v) for v in cells))
        tbl.add_column(
            name,
            justify="right" if numeric else "left",
            # rich narrows the widest wrappable columns first: a column with no space to wrap
            # at (one-word header and cells) is kept whole, the others wrap their headers
            no_wrap=not any(len(text.split()) > 1 for text in texts),
        )
    for r in rows:
        tbl.add_row(*(_cell(v) for v in r))
    return tbl


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    return plain_number(float(value))


def plain_number(value: float, digits: int = 4, max_decimals: int = 6) -> str:
    """``value`` with about ``digits`` significant figures in positional notation, never
    scientific: 13990.4 → ``13990``, 1.39904 → ``1.399``, 0.0123456 → ``0.01235``, 2.0 → ``2``.
    Large numbers keep every integer digit; decimals stop at ``max_decimals`` (a smaller non-zero
    value prints as ``0``). Non-finite values print as ``—``."""
    if not math.isfinite(value):
        return "—"
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = min(max(digits - 1 - magnitude, 0), max_decimals)
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def warn(message: str) -> None:
    """One yellow warning line on stderr."""
    err_console.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


def check_outputs(*paths: Path | None) -> None:
    """Refuse output files that cannot be written (a directory, a device, a missing folder) before
    a command does its work, not after it (:func:`dynamo_plan.formats.files.resolve_output`)."""
    from dynamo_plan.formats.files import resolve_output

    for path in paths:
        if path is not None:
            resolve_output(path)
