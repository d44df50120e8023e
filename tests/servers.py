"""Real servers for integration tests: Prometheus, etcd and any command (the mocker), on loopback.

Every server listens on 127.0.0.1 on a free port, keeps its data in a temporary directory and
stops by itself: it runs under coreutils ``timeout`` (``max_lifetime_s``, then SIGKILL 5 s
later), in its own session, and :meth:`ServerProcess.stop` is registered with ``atexit``. The
test command installs Debian's ``prometheus`` and ``etcd-server`` (scripts/test.sh); a missing
binary fails the test with that hint instead of skipping it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

__all__ = [
    "ServerProcess",
    "free_port",
    "start_etcd",
    "start_process",
    "start_prometheus",
    "wait_http",
]

DEFAULT_LIFETIME_S = 600.0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"'{name}' is not installed: run the test command (bash scripts/test.sh), which "
            f"installs Debian's prometheus and etcd-server packages"
        )
    return path


def wait_http(url: str, ready: Callable[[httpx.Response], bool], timeout_s: float = 30.0) -> None:
    """Poll ``url`` until ``ready(response)`` or fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            r = httpx.get(url, timeout=1.0)
            if ready(r):
                return
            last = f"HTTP {r.status_code}"
        except httpx.HTTPError as e:
            last = type(e).__name__
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready after {timeout_s:g} s ({last})")


@dataclass
class ServerProcess:
    """A child process with a fixed command line (so it restarts on the same port and data)."""

    name: str
    argv: list[str]
    port: int
    log_path: Path
    ready_url: str
    ready: Callable[[httpx.Response], bool]
    env: dict[str, str] | None = None
    max_lifetime_s: float = DEFAULT_LIFETIME_S
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout_s: float = 30.0) -> ServerProcess:
        """Start and wait until ready; the log says why when it does not come up."""
        log = self.log_path.open("ab")
        env = {**os.environ, **(self.env or {})}
        argv = ["timeout", "--kill-after=5", f"{self.max_lifetime_s:g}", *self.argv]
        self.proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
        log.close()
        atexit.register(self.stop)
        try:
            wait_http(self.ready_url, self.ready, timeout_s)
        except TimeoutError as e:
            self.stop()
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} did not start: {e}\n{tail}") from e
        return self

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL after 5 s."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        except ProcessLookupError:
            pass

    def restart(self, timeout_s: float = 30.0) -> ServerProcess:
        self.stop()
        return self.start(timeout_s)


def start_process(
    name: str,
    argv: Sequence[str],
    port: int,
    workdir: Path,
    ready_path: str = "/health",
    max_lifetime_s: float = DEFAULT_LIFETIME_S,
    env: dict[str, str] | None = None,
    timeout_s: float = 30.0,
) -> ServerProcess:
    """Start any HTTP server command (e.g. ``dynamo-plan mocker serve ...``) listening on ``port``."""
    workdir.mkdir(parents=True, exist_ok=True)
    return ServerProcess(
        name=name,
        argv=list(argv),
        port=port,
        log_path=workdir / f"{name}.log",
        ready_url=f"http://127.0.0.1:{port}{ready_path}",
        ready=lambda r: r.status_code == 200,
        env=env,
        max_lifetime_s=max_lifetime_s,
    ).start(timeout_s)


def start_prometheus(
    workdir: Path,
    targets: Sequence[str],
    scrape_interval_s: float = 1.0,
    max_lifetime_s: float = DEFAULT_LIFETIME_S,
) -> ServerProcess:
    """A real Prometheus scraping ``targets`` (``host:port``) every ``scrape_interval_s``."""
    binary = _binary("prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = workdir / "prometheus.yml"
    interval = f"{int(scrape_interval_s * 1000)}ms"
    lines = [
        "global:",
        f"  scrape_interval: {interval}",
        f"  evaluation_interval: {interval}",
        "scrape_configs:",
        "  - job_name: test",
        "    static_configs:",
        "      - targets: [" + ", ".join(f"'{t}'" for t in targets) + "]",
    ]
    config.write_text("\n".join(lines) + "\n")
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1h",
    ]
    return ServerProcess(
        name="prometheus",
        argv=argv,
        port=port,
        log_path=workdir / "prometheus.log",
        ready_url=f"http://127.0.0.1:{port}/-/ready",
        ready=lambda r: r.status_code == 200,
        max_lifetime_s=max_lifetime_s,
    ).start()


def start_etcd(workdir: Path, max_lifetime_s: float = DEFAULT_LIFETIME_S) -> ServerProcess:
    """A real single-member etcd; its v3 HTTP/JSON gateway is at ``.url`` (``/v3/kv/...``)."""
    binary = _binary("etcd")
    workdir.mkdir(parents=True, exist_ok=True)
    port, peer = free_port(), free_port()
    argv = [
        binary,
        "--name=test",
        f"--data-dir={workdir / 'etcd-data'}",
        f"--listen-client-urls=http://127.0.0.1:{port}",
        f"--advertise-client-urls=http://127.0.0.1:{port}",
        f"--listen-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-cluster=test=http://127.0.0.1:{peer}",
        "--log-level=warn",
    ]
    return ServerProcess(
        name="etcd",
        argv=argv,
        port=port,
        log_path=workdir / "etcd.log",
        ready_url=f"http://127.0.0.1:{port}/health",
        ready=lambda r: r.status_code == 200 and '"true"' in r.text,
        max_lifetime_s=max_lifetime_s,
    ).start()
