"""Progress views on stderr for long work.

:func:`task_progress` is the one progress helper for work counted in steps (``predict
backtest``, ``simulate``/``--compare``, ``demo``, ``profile --online --endpoint``, ``load
replay``). On a terminal: a transient rich bar. Elsewhere (logs, CI, a pipe): plain lines, at
most one every :data:`PLAIN_EVERY_S` seconds — ``backtest: 1200/4800 (25%), 14 s, ~42 s left``
— and, when any was printed, a last line with the total time; work shorter than that prints
nothing.

:func:`profiling_view` renders online profiling's
:class:`~dynamo_plan.profiler.cluster_run.ProfilingProgress` events (``profile --online --dgdr``
and ``dgdr run``). On a terminal: a transient bar (measurement ``step`` of ``steps``) whose
text is the latest event. Elsewhere (logs, CI, tests): one line per new stage of a measurement,
e.g. ``[2/4] TP1 decode wait-ready: DynamoGraphDeployment/x: Ready=False``; repeated polls of the
same stage print nothing. ``cleanup-failed`` is always a warning line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from dynamo_plan.cli.output import err_console, warn

if TYPE_CHECKING:
    from rich.progress import Progress

    from dynamo_plan.profiler.cluster_run import ProfilingProgress

__all__ = ["PLAIN_EVERY_S", "PlainProgress", "event_line", "profiling_view", "task_progress"]

#: Least time between two plain progress lines (s).
PLAIN_EVERY_S = 2.0


def _seconds(s: float) -> str:
    """A duration for a progress line: ``42 s``, ``3 min 05 s``."""
    if s < 60:
        return f"{s:.0f} s"
    minutes, rest = divmod(round(s), 60)
    return f"{minutes} min {rest:02d} s"


class PlainProgress:
    """Progress as plain lines (off a terminal): ``advance(n)`` counts steps and prints
    ``<description>: <done>/<total> (<pct>%), <elapsed>, ~<left> left`` when at least
    ``every_s`` seconds passed since the start or the last line; :meth:`finish` prints
    ``<description>: done, <total> steps in <elapsed>`` if any line was printed. ``clock`` is
    ``time.monotonic`` (passed in for tests); ``write`` prints one line."""

    def __init__(
        self,
        description: str,
        total: int,
        write: Callable[[str], None],
        *,
        every_s: float = PLAIN_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.description = description
        self.total = max(int(total), 0)
        self.write = write
        self.every_s = every_s
        self.clock = clock
        self.done = 0
        self.lines = 0
        self.started = clock()
        self.last = self.started

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = self.clock()
        if now - self.last < self.every_s:
            return
        self.last = now
        self.lines += 1
        elapsed = now - self.started
        line = f"{self.description}: {self.done}"
        if self.total > 0:
            fraction = min(self.done / self.total, 1.0)
            line += f"/{self.total} ({100 * fraction:.0f}%), {_seconds(elapsed)}"
            if 0 < fraction < 1:
                line += f", ~{_seconds(elapsed * (1 - fraction) / fraction)} left"
        else:
            line += f", {_seconds(elapsed)}"
        self.write(line)

    def finish(self) -> None:
        if self.lines:
            elapsed = self.clock() - self.started
            self.write(f"{self.description}: done, {self.done} steps in {_seconds(elapsed)}")


def _plain_line(line: str) -> None:
    err_console.print(line, highlight=False, markup=False, soft_wrap=True)


@contextmanager
def task_progress(
    description: str, total: int, enabled: bool = True
) -> Iterator[Callable[[], None]]:
    """Show progress of ``total`` steps on stderr (module doc); yields ``advance()``, called once
    per step. ``enabled=False`` shows nothing (e.g. work known to be short)."""
    if not enabled:
        yield lambda: None
        return
    if not err_console.is_terminal:
        plain = PlainProgress(description, total, _plain_line, every_s=PLAIN_EVERY_S)
        yield plain.advance
        plain.finish()
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task(escape(description), total=total)
        yield lambda: progress.advance(task)


def event_line(event: ProfilingProgress) -> str:
    """One plain line for ``event``: ``[step+1/steps] TP<tp> <role> <stage>: <message>`` during a
    measurement, ``<stage>: <message>`` otherwise (rbac, pick, done, cleanup-failed)."""
    if event.tp is None:
        return f"{event.stage}: {event.message}"
    where = f"[{event.step + 1}/{event.steps}] TP{event.tp} {event.role or ''}".rstrip()
    return f"{where} {event.stage}: {event.message}"


class _View:
    """The callable handed to the library as its ``progress`` hook."""

    def __init__(self, live: bool) -> None:
        self.live = live
        self.bar: Progress | None = None
        self.task: Any = None
        self.last: tuple[str, int | None, str | None] | None = None

    def __call__(self, event: ProfilingProgress) -> None:
        if event.stage == "cleanup-failed":
            self._stop()
            warn(event.message)
            return
        if self.live:
            self._show(event)
            return
        key = (event.stage, event.tp, event.role)
        if key != self.last:
            self.last = key
            err_console.print(event_line(event), highlight=False, markup=False, soft_wrap=True)

    def _show(self, event: ProfilingProgress) -> None:
        if event.stage == "done":
            self._stop()
            return
        if self.bar is None:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err_console,
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task("", total=max(event.steps, 1))
        self.bar.update(
            self.task,
            description=escape(event_line(event)),
            completed=event.step,
            total=max(event.steps, 1),
        )

    def _stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


@contextmanager
def profiling_view() -> Iterator[Callable[[ProfilingProgress], None]]:
    """Yield a ``progress`` hook that renders profiling events on stderr (see the module doc);
    the live bar (terminal only) is removed when the block ends, also on an exception."""
    view = _View(live=err_console.is_terminal)
    try:
        yield view
    finally:
        view._stop()
