"""The fuzz harness's fork server (tests/fuzz/harness.py runs it: ``python -m tests.fuzz.child``).

A single-threaded process that imports the CLI and the libraries its commands load lazily once,
then forks one child per request, so each case is a real process (its own exit code, signals,
resource limits, working directory) that starts in milliseconds instead of a second.

Protocol, one JSON object a line: the harness writes ``{"id", "argv", "cwd", "out", "err", "env",
"fsize"}`` on stdin; the server answers ``{"id", "pid"}`` at once and ``{"pid", "code"}`` when
that child ends (``code``: its exit status, or minus the signal that killed it). EOF on stdin
stops the server. :func:`run_child` behaves like the ``dynamo-plan`` console script: its exit
code is what ``main()`` gives, an uncaught exception prints its traceback as Python would.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import resource
import select
import signal
import sys
import traceback

PRELOAD = ["matplotlib.pyplot", "kubernetes.client", "kubernetes.dynamic", "httpx", "anyio"]


def _preload() -> None:
    """Import every dynamo_plan module (the CLI loads its commands lazily) and the heavy
    libraries they use; a module that fails to import (mid-edit) is left to the child."""
    import pkgutil

    import dynamo_plan

    names = [m.name for m in pkgutil.walk_packages(dynamo_plan.__path__, "dynamo_plan.")]
    for name in [*PRELOAD, *(n for n in names if not n.endswith("__main__"))]:
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    with contextlib.suppress(Exception):  # httpx imports its transport stack on first use
        import httpx

        httpx.Client().close()


def run_child(
    argv: list[str], cwd: str, out: str, err: str, env: dict[str, str], fsize: int | None
) -> None:
    """Run ``dynamo-plan ARGV`` in this (forked) process and leave with its exit code."""
    for sig in (signal.SIGTERM, signal.SIGCHLD):  # as in a fresh Python (SIGPIPE stays ignored)
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.setpgid(0, 0)
    os.chdir(cwd)
    os.environ.update(env)
    null = os.open(os.devnull, os.O_RDONLY)
    if null != 0:
        os.dup2(null, 0)
        os.close(null)
    drainer = None
    if fsize is None:
        for fd, path in ((1, out), (2, err)):
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(handle, fd)
            os.close(handle)
    else:  # the size limit is for the command's own files: its stdout/stderr go through pipes
        drainer = _drain_into(out, err)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", closefd=False, encoding="utf-8")  # noqa: SIM115
    sys.stderr = open(2, "w", closefd=False, encoding="utf-8")  # noqa: SIM115
    if fsize is not None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    sys.argv = ["dynamo-plan", *argv]
    code = 0
    try:
        from dynamo_plan.cli.app import main

        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except KeyboardInterrupt:
        traceback.print_exc()
        code = 130
    except BaseException:
        traceback.print_exc()
        code = 1
    with contextlib.suppress(BaseException):
        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()
    if drainer is not None:
        os.close(1)
        os.close(2)
        os.waitpid(drainer, 0)
    os._exit(code)


def _drain_into(out: str, err: str) -> int:
    """Make fds 1 and 2 pipes; a forked helper (no size limit) copies them into ``out`` and
    ``err`` until both close. Returns the helper's pid."""
    pipes = [os.pipe(), os.pipe()]
    pid = os.fork()
    if pid == 0:
        files = {}
        for (r, w), path in zip(pipes, (out, err), strict=True):
            os.close(w)
            files[r] = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        while files:
            readable, _, _ = select.select(list(files), [], [])
            for r in readable:
                chunk = os.read(r, 65536)
                if chunk:
                    os.write(files[r], chunk)
                else:
                    os.close(files.pop(r))
        os._exit(0)
    for fd, (r, w) in zip((1, 2), pipes, strict=True):
        os.dup2(w, fd)
        os.close(w)
        os.close(r)
    return pid


def serve() -> None:
    """The server loop (module docstring)."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    _preload()
    stdin = sys.stdin.buffer
    buffer = b""
    children: set[int] = set()
    open_ = True
    while open_ or children:
        ready, _, _ = select.select([stdin] if open_ else [], [], [], 0.02)
        if ready:
            chunk = os.read(stdin.fileno(), 65536)
            if not chunk:
                open_ = False
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                request = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    run_child(
                        request["argv"], request["cwd"], request["out"], request["err"],
                        request["env"], request["fsize"],
                    )  # fmt: skip
                children.add(pid)
                _say({"id": request["id"], "pid": pid})
        for pid in list(children):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                children.discard(pid)
                _say({"pid": pid, "code": os.waitstatus_to_exitcode(status)})
        if not open_ and children:
            for pid in children:  # the harness is gone: nobody will judge them
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def _say(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    serve()
