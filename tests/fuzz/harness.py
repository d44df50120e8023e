"""The bad-input case table's machinery: run one case as a real process, check it from outside.

A :class:`Case` is one command line with a bad input (or a control with a good one): its class
(``traces``, ``dgdrs``, ``profiles``, ``manifests``, ``settings``, ``servers``, ``outputs``,
``signals``), a label, the arguments after ``dynamo-plan``, a set-up that writes its files into a
fresh case directory, the exit codes the issue documents (0 ok, 1 bad input, 2 usage, 3 an outside
service failed, 4 infeasible SLA) and extra checks.

:func:`run_case` runs it in a child process and returns an :class:`Outcome` with the universal
checks applied to every case:

* ``traceback``: no "Traceback" on stdout or stderr;
* ``hang``: it ended within ``timeout_s`` (then it is killed);
* ``exit``: its exit code is one of ``expect``;
* ``partial``: the case directory holds no temporary file, no new empty directory, and — when the
  command failed or was interrupted — nothing changed at all: no new file, every file that was
  there byte-identical, every link, FIFO and device still what it was;
* ``message``: on a non-zero exit, stderr's last non-empty line is one readable ``error:`` line
  (Click's own usage errors, exit 2, may show their usage box instead; an interrupt may say
  ``interrupted``);
* ``check``: the case's own checks (e.g. a symlink kept, a target written, a number of GPUs).

Two ways to run the child: a fork of a process that has already imported the CLI (the fork
server in tests/fuzz/child.py: a real process with its own exit code, signals and resource
limits, started in milliseconds), or ``exec=True``: the installed ``dynamo-plan`` console script
(signals). ``fsize`` puts an ``RLIMIT_FSIZE`` on a forked child: any write past that many bytes
into a file fails (``EFBIG``) as on a full disk, with no privilege needed.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fuzz.world import World

CLASSES = ("traces", "dgdrs", "profiles", "manifests", "settings", "servers", "outputs", "signals")
KINDS = ("traceback", "hang", "exit", "partial", "message", "check")

Argv = Sequence["str | Path"]


@dataclass
class Ctx:
    """What a case's callables see: its own fresh directory and the shared world."""

    dir: Path
    world: World

    def __truediv__(self, name: str) -> Path:
        return self.dir / name


Check = Callable[[Ctx, "Run"], "str | None"]


@dataclass(frozen=True)
class Case:
    """One row of the table (module docstring)."""

    cls: str
    label: str
    argv: Callable[[Ctx], Argv]
    expect: tuple[int, ...]
    setup: Callable[[Ctx], None] | None = None
    checks: tuple[Check, ...] = ()
    timeout_s: float = 20.0
    exec: bool = False
    signal: int | None = None
    ready: Callable[[Ctx, Path, float], bool] | None = None
    fsize: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    may_write: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.cls}: {self.label}"


@dataclass
class Run:
    """What the child did."""

    exit_code: int | None
    stdout: str
    stderr: str
    elapsed_s: float
    hung: bool
    signalled: bool = False


@dataclass
class Outcome:
    case: Case
    run: Run
    problems: dict[str, list[str]]

    @property
    def ok(self) -> bool:
        return not any(self.problems.values())

    def summary(self) -> str:
        lines = [f"{self.case.id}: exit {self.run.exit_code} in {self.run.elapsed_s:.1f} s"]
        for kind, msgs in self.problems.items():
            lines += [f"  [{kind}] {m}" for m in msgs]
        tail = self.run.stderr.strip().splitlines()[-3:]
        if tail:
            lines.append("  stderr tail: " + " | ".join(line[:300] for line in tail))
        return "\n".join(lines)


# --- running the child ---------------------------------------------------------------------------


class ForkServer:
    """Client of tests/fuzz/child.py's fork server (one per test process, thread-safe)."""

    def __init__(self) -> None:
        repo = Path(__file__).resolve().parents[2]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fuzz.child"],
            cwd=repo,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.pids: dict[int, int] = {}
        self.codes: dict[int, int] = {}
        self.next_id = 0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            message = json.loads(line)
            with self.changed:
                if "id" in message:
                    self.pids[message["id"]] = message["pid"]
                else:
                    self.codes[message["pid"]] = message["code"]
                self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    def start(self, request: dict[str, Any]) -> int:
        assert self.proc.stdin is not None
        with self.changed:
            self.next_id += 1
            rid = self.next_id
            self.proc.stdin.write((json.dumps({"id": rid, **request}) + "\n").encode())
            self.proc.stdin.flush()
            if not self.changed.wait_for(lambda: rid in self.pids, timeout=30):
                raise RuntimeError("the fuzz fork server does not answer")
            return self.pids.pop(rid)

    def code(self, pid: int, timeout: float = 0.0) -> int | None:
        with self.changed:
            self.changed.wait_for(lambda: pid in self.codes, timeout=timeout)
            return self.codes.get(pid)

    def close(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)


_SERVER: ForkServer | None = None
_SERVER_LOCK = threading.Lock()


def fork_server() -> ForkServer:
    global _SERVER
    with _SERVER_LOCK:
        if _SERVER is None or _SERVER.proc.poll() is not None:
            _SERVER = ForkServer()
            atexit.register(_SERVER.close)
        return _SERVER


@dataclass
class _Forked:
    """A child of the fork server, with Popen's few methods the runner needs."""

    pid: int
    server: ForkServer
    returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.server.code(self.pid)
        return self.returncode

    def wait(self, timeout: float) -> int | None:
        if self.returncode is None:
            self.returncode = self.server.code(self.pid, timeout)
        return self.returncode


def _console_script() -> list[str]:
    script = Path(sys.executable).with_name("dynamo-plan")
    return [str(script)] if script.exists() else [sys.executable, "-m", "dynamo_plan"]


def _start(case: Case, argv: list[str], cwd: Path, out: Path, err: Path) -> Any:
    env = {"COLUMNS": "100", "MPLBACKEND": "Agg", **case.env}
    if case.exec:
        assert case.fsize is None, "fsize needs the fork server (stdout/stderr through pipes)"
        with out.open("wb") as o, err.open("wb") as e:
            return subprocess.Popen(
                [*_console_script(), *argv],
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=o,
                stderr=e,
                env={**os.environ, **env},
                start_new_session=True,
            )
    server = fork_server()
    request = {"argv": argv, "cwd": str(cwd), "out": str(out), "err": str(err), "env": env, "fsize": case.fsize}  # fmt: skip
    return _Forked(server.start(request), server)


def _kill(proc: Any) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10.0)


def execute(case: Case, ctx: Ctx, logs: Path) -> Run:
    """Run ``case`` in ``ctx.dir``; stdout/stderr go to files under ``logs`` (outside the case
    directory, so they do not count as the command's outputs)."""
    argv = [str(a) for a in case.argv(ctx)]
    out, err = logs / "stdout", logs / "stderr"
    proc = _start(case, argv, ctx.dir, out, err)
    start = time.monotonic()  # after the fork server's first start-up
    deadline = start + case.timeout_s
    signalled = False
    hung = False
    try:
        while proc.poll() is None:
            now = time.monotonic()
            if now >= deadline:
                hung = True
                break
            wanted = case.signal is not None and not signalled
            if wanted and (case.ready is None or case.ready(ctx, logs, now - start)):
                assert case.signal is not None
                os.kill(proc.pid, case.signal)  # then it has the rest of its time to stop
                signalled = True
            time.sleep(0.02)
    finally:
        if proc.poll() is None:  # hung, or the harness itself failed: leave no child behind
            _kill(proc)
    elapsed = time.monotonic() - start
    return Run(
        exit_code=None if hung else proc.returncode,
        stdout=_read(out),
        stderr=_read(err),
        elapsed_s=elapsed,
        hung=hung,
        signalled=signalled,
    )


def _read(path: Path) -> str:
    """A child's output file ("" when it was killed before opening it)."""
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


# --- the directory before and after --------------------------------------------------------------

Entry = tuple[str, str]


def snapshot(root: Path) -> dict[str, Entry]:
    """Every path under ``root`` (links not followed): its kind and content digest."""
    entries: dict[str, Entry] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            st = path.lstat()
            mode = st.st_mode
            if stat.S_ISLNK(mode):
                entries[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(mode):
                entries[rel] = ("dir", "empty" if not any(path.iterdir()) else "")
            elif stat.S_ISREG(mode):
                entries[rel] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
            elif stat.S_ISFIFO(mode):
                entries[rel] = ("fifo", "")
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                entries[rel] = ("device", str(st.st_rdev))
            else:
                entries[rel] = ("other", "")
        dirnames[:] = [d for d in dirnames if not (Path(dirpath) / d).is_symlink()]
    return entries


TEMP_NAME = re.compile(r"(\.tmp|\.part|\.partial|~$|^\.#|^tmp[a-z0-9_]{6,}$)", re.IGNORECASE)


def _temp_like(rel: str) -> bool:
    return any(TEMP_NAME.search(part) for part in Path(rel).parts)


def _allowed(rel: str, globs: tuple[str, ...]) -> bool:
    return any(Path(rel).match(g) for g in globs)


def partial_problems(
    before: dict[str, Entry], after: dict[str, Entry], failed: bool, may_write: tuple[str, ...]
) -> list[str]:
    """Temporary files and new empty directories always; any change at all after a failure."""
    problems = []
    for rel, entry in sorted(after.items()):
        new = rel not in before
        if new and _temp_like(rel) and not _allowed(rel, may_write):
            problems.append(f"temporary file left: {rel}")
        elif new and entry == ("dir", "empty") and not _allowed(rel, may_write):
            problems.append(f"new empty directory: {rel}")
    if failed:
        for rel in sorted(set(before) | set(after)):
            if _allowed(rel, may_write) or before.get(rel) == after.get(rel):
                continue
            if rel not in after:
                problems.append(f"removed by a failed command: {rel}")
            elif rel not in before:
                if not (_temp_like(rel) or after[rel][0] == "dir"):
                    problems.append(f"left by a failed command: {rel} ({after[rel][0]})")
            elif before[rel][0] == "dir" and after[rel][0] == "dir":
                continue  # contents are compared path by path
            else:
                problems.append(
                    f"changed by a failed command: {rel} ({before[rel][0]} -> {after[rel][0]})"
                )
    return problems


# --- the verdict ---------------------------------------------------------------------------------


def _message_problem(run: Run) -> str | None:
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    if not lines:
        return f"exit {run.exit_code} with nothing on stderr"
    last = lines[-1].strip()
    if last.startswith("error:") and last.isprintable():
        return None
    if run.signalled and last.startswith("interrupted"):
        return None
    if run.exit_code == 2 and any("Usage:" in line for line in lines):
        return None  # Click's own usage error (a missing or unknown option)
    return f"last stderr line is not one 'error:' line: {last[:200]!r}"


def judge(case: Case, ctx: Ctx, run: Run, before: dict[str, Entry]) -> Outcome:
    problems: dict[str, list[str]] = {k: [] for k in KINDS}
    if "Traceback" in run.stdout + run.stderr:
        tail = run.stderr.strip().splitlines()[-1:] or ["?"]
        problems["traceback"].append(f"traceback: {tail[0][:300]}")
    if run.hung:
        problems["hang"].append(f"still running after {case.timeout_s:g} s (killed)")
    elif run.exit_code not in case.expect:
        problems["exit"].append(f"exit {run.exit_code}, expected one of {case.expect}")
    failed = run.hung or run.exit_code != 0
    problems["partial"] += partial_problems(before, snapshot(ctx.dir), failed, case.may_write)
    if not run.hung and run.exit_code not in (0, None) and run.exit_code > 0:
        msg = _message_problem(run)
        if msg:
            problems["message"].append(msg)
    if not run.hung:
        for check in case.checks:
            try:
                msg = check(ctx, run)
            except Exception as e:  # a check that cannot even look is a failed check
                msg = f"{getattr(check, '__name__', 'check')}: {type(e).__name__}: {e}"
            if msg:
                problems["check"].append(msg)
    return Outcome(case, run, problems)


def run_case(case: Case, world: World) -> Outcome:
    """Set up a fresh directory, run the case, judge it; the directory is removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="fuzzcase-", dir=world.root))
    work, logs = base / "work", base / "logs"
    work.mkdir()
    logs.mkdir()
    ctx = Ctx(work, world)
    try:
        if case.setup is not None:
            case.setup(ctx)
        before = snapshot(work)
        run = execute(case, ctx, logs)
        return judge(case, ctx, run, before)
    finally:
        shutil.rmtree(base, ignore_errors=True)


# --- small helpers for case tables ---------------------------------------------------------------


def write(name: str, content: bytes | str) -> Callable[[Ctx], None]:
    """A set-up writing ``content`` to ``name`` in the case directory."""

    def setup(ctx: Ctx) -> None:
        path = ctx / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)

    return setup


def chain(*steps: Callable[[Ctx], None] | None) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        for step in steps:
            if step is not None:
                step(ctx)

    return setup


def stderr_has(*needles: str) -> Check:
    """The stderr names each of ``needles`` (case-insensitive)."""

    def check(ctx: Ctx, run: Run) -> str | None:
        missing = [n for n in needles if n.lower() not in run.stderr.lower()]
        return f"stderr does not mention {missing}" if missing else None

    check.__name__ = f"stderr_has{needles}"
    return check


def within(seconds: float) -> Check:
    def check(ctx: Ctx, run: Run) -> str | None:
        if run.elapsed_s > seconds:
            return f"took {run.elapsed_s:.1f} s, more than {seconds:g} s"
        return None

    return check
