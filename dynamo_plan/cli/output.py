"""Shared CLI plumbing: the ``-o/--output`` option, result rendering, stderr console, progress.

Results go to stdout (table, JSON or YAML); logs, warnings and progress bars go to stderr.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from typing import Annotated, Any

import numpy as np
import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

err_console = Console(stderr=True, highlight=False)


class OutputFormat(StrEnum):
    """How a command prints its result."""

    table = "table"
    json = "json"
    yaml = "yaml"


OutputOption = Annotated[
    OutputFormat,
    typer.Option("--output", "-o", help="Result format on stdout: table, json or yaml."),
]


def to_plain(value: Any) -> Any:
    """Convert numpy scalars/arrays, tuples and non-finite floats into JSON-safe Python values."""
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return to_plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def emit(data: Any, fmt: OutputFormat, table: Callable[[], Any] | None = None) -> None:
    """Print ``data`` to stdout in ``fmt``; ``table`` builds the rich renderable for table output."""
    plain = to_plain(data)
    if fmt is OutputFormat.json:
        sys.stdout.write(json.dumps(plain, indent=2) + "\n")
    elif fmt is OutputFormat.yaml:
        sys.stdout.write(yaml.safe_dump(plain, sort_keys=False))
    else:
        Console(soft_wrap=True).print(table() if table is not None else plain)


def simple_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    """A rich table with right-aligned numeric cells; floats are shown with 4 significant figures."""
    tbl = Table(title=title, title_justify="left")
    rows = [list(r) for r in rows]
    for i, name in enumerate(columns):
        numeric = bool(rows) and all(isinstance(r[i], int | float) for r in rows)
        tbl.add_column(name, justify="right" if numeric else "left")
    for r in rows:
        tbl.add_row(*(_cell(v) for v in r))
    return tbl


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return "—" if not math.isfinite(value) else f"{value:.4g}"
    return str(value)


def warn(message: str) -> None:
    """One yellow warning line on stderr."""
    err_console.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


@contextmanager
def progress_bar(
    description: str, total: int, enabled: bool = True
) -> Iterator[Callable[[], None]]:
    """A rich progress bar on stderr; yields ``advance()``. Hidden when stderr is not a terminal."""
    show = enabled and err_console.is_terminal
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=not show,
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda: progress.advance(task)
