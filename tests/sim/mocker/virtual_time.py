"""An asyncio event loop on a virtual clock: timing tests that do not depend on the machine.

``loop.time()`` is a number that moves only when the loop would otherwise sleep: when no callback
is ready and the loop asks its selector to wait ``timeout`` seconds for the next timer, the
selector polls I/O without waiting and, if nothing is ready, the clock jumps by ``timeout``
(+ ``lag``). Code that reads ``loop.time()`` and sleeps with ``asyncio.sleep`` /
``loop.call_later`` — the mock cluster does only that — then sees exactly the times it
scheduled, however loaded the test machine is, and a 10-minute run takes milliseconds.

``lag`` (s) makes every timer fire that much late, as a busy machine's wake-up lag does, so the
cluster's handling of lag (absolute step deadlines) can be checked exactly too.

A call in a worker thread (``loop.run_in_executor``, ``asyncio.to_thread``) takes no virtual
time: while one runs, the loop waits for it for real and the clock stands still. Not for
sockets or other processes: a reply arrives in real time while the virtual clock races ahead.
With nothing scheduled (``timeout=None``) the loop waits for I/O for real.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor
from typing import Any, TypeVar, TypeVarTuple

__all__ = ["VirtualTimeLoop", "run_virtual"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class _VirtualSelector(selectors.DefaultSelector):
    """Polls instead of waiting; a wait of ``timeout`` s advances the loop's clock instead."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready: list[tuple[selectors.SelectorKey, int]] = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None or self._loop.threads:  # only I/O (a thread's result) can wake it
            return super().select(None)
        if timeout > 0:
            self._loop.now += timeout + self._loop.lag
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose :meth:`time` starts at 0 and moves only between timers."""

    def __init__(self, lag: float = 0.0) -> None:
        if lag < 0:
            raise ValueError(f"lag must be >= 0, got {lag}")
        self.now = 0.0
        self.lag = float(lag)
        self.threads = 0  # worker-thread calls running
        super().__init__(_VirtualSelector(self))

    def time(self) -> float:
        return self.now

    def run_in_executor(
        self, executor: Executor | None, func: Callable[[*Ts], T], *args: *Ts
    ) -> asyncio.Future[T]:
        fut = super().run_in_executor(executor, func, *args)
        self.threads += 1
        fut.add_done_callback(self._thread_done)
        return fut

    def _thread_done(self, _: object) -> None:
        self.threads -= 1


def run_virtual(coro: Coroutine[Any, Any, T], lag: float = 0.0) -> T:
    """``asyncio.run(coro)`` on a fresh :class:`VirtualTimeLoop`."""
    with asyncio.Runner(loop_factory=lambda: VirtualTimeLoop(lag)) as runner:
        return runner.run(coro)
