"""Fixtures for the mocker tests: the shared H200 profile and a mocker served from a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from dynamo_plan.adapters.profile_files import load_profile
from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.sim.mocker.server import MockerServer

H200 = Path("profiles") / "h200_llama3.1-8b-fp8_tp1p_tp1d"
MODEL = "test-model"
T = TypeVar("T")


@pytest.fixture(scope="session")
def profile(shared_data: Path) -> PerformanceProfile:
    return load_profile(shared_data / H200)


class ThreadedMocker:
    """A :class:`MockerServer` on its own event loop in a daemon thread, on a free port."""

    def __init__(self, server: MockerServer) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.url = ""

    def __enter__(self) -> ThreadedMocker:
        self.thread.start()
        self.url = self.run(self.server.start("127.0.0.1", 0))
        return self

    def __exit__(self, *exc: object) -> None:
        self.run(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    def run(self, coro: Any, timeout: float = 20.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the server's loop (the cluster is not thread-safe)."""

        async def _call() -> T:
            return fn(*args)

        return self.run(_call())  # type: ignore[no-any-return]

    def client(self, timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)


@pytest.fixture
def mocker(profile: PerformanceProfile) -> Iterator[Callable[..., ThreadedMocker]]:
    """``mocker(**MockerServer kwargs)`` → a started :class:`ThreadedMocker` (stopped after)."""
    started: list[ThreadedMocker] = []

    def make(**kwargs: Any) -> ThreadedMocker:
        kwargs.setdefault("model", MODEL)
        m = ThreadedMocker(MockerServer(profile, **kwargs)).__enter__()
        started.append(m)
        return m

    yield make
    for m in started:
        m.__exit__(None, None, None)
