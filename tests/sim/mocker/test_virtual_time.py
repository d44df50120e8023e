"""The virtual clock the cluster's timing tests run on: exact times, no real waiting."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tests.sim.mocker.virtual_time import run_virtual


def test_timers_fire_at_their_times_at_once() -> None:
    async def main() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        fired: list[tuple[str, float]] = []

        async def at(name: str, delay: float) -> None:
            await asyncio.sleep(delay)
            fired.append((name, loop.time()))

        await asyncio.gather(at("b", 600.0), at("a", 0.25), at("c", 3600.0))
        return fired

    started = time.monotonic()
    fired = run_virtual(main())
    assert time.monotonic() - started < 5.0  # an hour of virtual time, no real waiting
    assert fired == [("a", 0.25), ("b", 600.0), ("c", 3600.0)]


def test_lag_makes_every_timer_late_by_it() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        times = []
        for _ in range(3):
            await asyncio.sleep(1.0)
            times.append(loop.time())
        return times

    assert run_virtual(main(), lag=0.01) == pytest.approx([1.01, 2.02, 3.03], rel=1e-12)


def test_a_worker_thread_takes_no_virtual_time() -> None:
    """While a thread works (for real), a pending timer does not fire: the clock stands still."""
    release = threading.Event()

    async def main() -> tuple[float, float, bool]:
        loop = asyncio.get_running_loop()
        timer = asyncio.ensure_future(asyncio.sleep(0.001))
        loop.call_soon(lambda: threading.Timer(0.2, release.set).start())
        await asyncio.to_thread(release.wait, 10.0)  # returns after 0.2 s of real time
        done_during = timer.done()
        t_thread = loop.time()
        await timer
        return t_thread, loop.time(), done_during

    t_thread, t_timer, done_during = run_virtual(main())
    assert (t_thread, t_timer, done_during) == (0.0, 0.001, False)
