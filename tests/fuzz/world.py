"""What the fuzz cases share: good inputs made once, and servers started on first use.

Everything comes from this repository (no ``../shared``): the profile is made by
``dynamo-plan profile --offline``, the DGDR by ``dynamo-plan dgdr create``, the traces are the
first lines of ``sample_traces/``. Servers listen on 127.0.0.1 free ports and stop with the world
(and by themselves after ``LIFETIME_S``): the Kubernetes API stand-in (tests/k8s_standin.py), the
project's own mocker as a working OpenAI endpoint (tests/servers.py), and :class:`BadServer`\\ s
that accept and never answer, answer garbage, close at once, answer HTTP 500 or unparseable JSON,
or play a Prometheus with no series.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import socketserver
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.conftest import REPO_ROOT, run_cli

LIFETIME_S = 600.0
SAMPLE_TRACES = REPO_ROOT / "sample_traces"
MODEL = "llama-3.1-8b"
HF_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
SLA = {"isl": "1000", "osl": "100", "ttft": "300", "itl": "20"}


class _Handler(socketserver.BaseRequestHandler):
    server: BadServer

    def handle(self) -> None:
        conn: socket.socket = self.request
        conn.settimeout(1.0)
        mode = self.server.mode
        if mode == "close":
            return
        request = b""
        with contextlib.suppress(OSError):
            while b"\r\n\r\n" not in request and len(request) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                request += chunk
        if mode == "silent":
            while not self.server.stopping.wait(0.1):
                pass
            return
        if mode == "garbage":
            body = b"\x00\xff\xfe garbage \x13\x37\r\n\r\nnot http at all\n" * 4
            with contextlib.suppress(OSError):
                conn.sendall(body)
            return
        if mode == "http500":
            status, payload = b"500 Internal Server Error", b'{"error": "boom"}'
        elif mode == "junkjson":
            status, payload = b"200 OK", b'{"status": "success", "data": [1, 2,,,'
        elif mode == "prom_empty":
            status = b"200 OK"
            payload = json.dumps(
                {"status": "success", "data": {"resultType": "vector", "result": []}}
            ).encode()
        else:
            raise AssertionError(mode)
        head = (
            b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(payload)).encode() + b"\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(OSError):
            conn.sendall(head + payload)


class BadServer(socketserver.ThreadingTCPServer):
    """A loopback TCP server misbehaving in one way (``mode``); see the module docstring."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mode: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = mode
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.daemon = True
        self.thread.start()
        self.timer = threading.Timer(LIFETIME_S, self.stop)
        self.timer.daemon = True
        self.timer.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def stop(self) -> None:
        self.stopping.set()
        self.timer.cancel()
        self.shutdown()
        self.server_close()


class World:
    """Shared good inputs and lazily started servers for one test process."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="dynamo-plan-fuzz-"))
        self._stack = contextlib.ExitStack()
        self._servers: dict[str, BadServer] = {}
        self._standin: Any = None
        self._mocker: Any = None
        good = self.root / "good"
        good.mkdir()
        self.profile = good / "profile"
        made = run_cli(
            "profile", "--offline", "--model", MODEL, "--system", "h200_sxm", "--backend", "vllm",
            "--isl", SLA["isl"], "--osl", SLA["osl"], "--ttft", SLA["ttft"], "--itl", SLA["itl"],
            "--out", self.profile, "--no-plots", "-o", "json",
        )  # fmt: skip
        if made.exit_code != 0:
            raise RuntimeError(f"cannot make the fuzz profile: {made.stderr}")
        self.dgdr = good / "dgdr.yaml"
        made = run_cli(
            "dgdr", "create", "--name", "llama", "--model", HF_MODEL, "--backend", "vllm",
            "--isl", SLA["isl"], "--osl", SLA["osl"], "--ttft", SLA["ttft"], "--itl", SLA["itl"],
            "--profiler-image", "nvcr.io/nvidia/ai-dynamo/profiler:1", "--offline",
            "--system", "h200_sxm", "--dynamo-version", "0.9", "-f", self.dgdr,
        )  # fmt: skip
        if made.exit_code != 0:
            raise RuntimeError(f"cannot make the fuzz DGDR: {made.stderr}")
        self.trace = good / "mooncake.jsonl"
        self.trace.write_bytes(_head(SAMPLE_TRACES / "mooncake_conversation_10min.jsonl", 200))
        self.trace_full = SAMPLE_TRACES / "mooncake_conversation_10min.jsonl"
        self.azure = good / "azure.csv"
        self.azure.write_bytes(_head(SAMPLE_TRACES / "azure2023_conv_10min.csv", 200))

    def profile_copy(self, target: Path, meta: dict[str, Any] | None = None) -> Path:
        """A copy of the good profile at ``target``; ``meta`` keys replace profile.json's."""
        shutil.copytree(self.profile, target)
        if meta is not None:
            path = target / "profile.json"
            data = json.loads(path.read_text())
            data.update(meta)
            path.write_text(json.dumps(data, indent=2))
        return target

    # --- servers ---------------------------------------------------------------------------------

    def bad_server(self, mode: str) -> str:
        if mode not in self._servers:
            self._servers[mode] = BadServer(mode)
        return self._servers[mode].url

    def standin(self) -> Any:
        if self._standin is None:
            from tests.k8s_standin import running_standin

            self._standin = self._stack.enter_context(running_standin())
        return self._standin

    def kubeconfig(self, target: Path) -> Path:
        """A kubeconfig at ``target`` for the stand-in (started on first use)."""
        result: Path = self.standin().kubeconfig(target)
        return result

    def mocker_url(self) -> str:
        """The project's mocker serving the good profile, fast (a working OpenAI endpoint)."""
        if self._mocker is None:
            from tests.fuzz.harness import _console_script
            from tests.servers import free_port, start_process

            port = free_port()
            argv = [
                *_console_script(), "mocker", "serve", "--profile", str(self.profile),
                "--port", str(port), "--speedup", "1000", "--prefill-replicas", "4",
                "--decode-replicas", "4",
            ]  # fmt: skip
            self._mocker = start_process(
                "mocker", argv, port, self.root / "mocker", max_lifetime_s=LIFETIME_S
            )
        url: str = self._mocker.url
        return url

    def close(self) -> None:
        for server in self._servers.values():
            server.stop()
        if self._mocker is not None:
            self._mocker.stop()
        self._stack.close()
        shutil.rmtree(self.root, ignore_errors=True)


def _head(path: Path, lines: int) -> bytes:
    with path.open("rb") as handle:
        return b"".join(handle.readline() for _ in range(lines))


@contextlib.contextmanager
def world() -> Iterator[World]:
    w = World()
    try:
        yield w
    finally:
        w.close()
