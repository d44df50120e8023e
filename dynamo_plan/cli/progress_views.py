"""Progress views on stderr for long library calls that report events (not results).

:func:`profiling_view` renders online profiling's
:class:`~dynamo_plan.profiler.cluster_run.ProfilingProgress` events (``profile --online --dgdr``
and ``dgdr run``). On a terminal: a transient bar (measurement ``step`` of ``steps``) whose
text is the latest event. Elsewhere (logs, CI, tests): one line per new stage of a measurement,
e.g. ``[2/4] TP1 decode wait-ready: DynamoGraphDeployment/x: Ready=False``; repeated polls of the
same stage print nothing. ``cleanup-failed`` is always a warning line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dynamo_plan.cli.output import err_console, warn

if TYPE_CHECKING:
    from dynamo_plan.profiler.cluster_run import ProfilingProgress

__all__ = ["event_line", "profiling_view"]


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
