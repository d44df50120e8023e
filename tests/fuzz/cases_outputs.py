"""Case table, outputs and signals (tests/fuzz/harness.py).

``outputs``: every command with an output file or directory flag, pointed at

* a symlink to a regular file: the target is written, the link stays a link (exit 0);
* a directory, a FIFO, a device node, a symlink to a device: refused, nothing changed (exit 1,
  and no hang on the FIFO). The device is a private ``mknod`` copy of ``/dev/null`` inside the
  case directory (as root; otherwise a link to the real one), so a writer that replaces devices
  can only replace that copy;
* a full disk: the child runs under ``RLIMIT_FSIZE`` (:data:`FULL_DISK_BYTES`, less than any
  output), so every file it writes fails part-way (``EFBIG``) as on a full disk (its stdout and
  stderr go through pipes, unlimited); the target held ``previous`` content: exit 1, the old
  content intact, no partial file, no new (empty) directory.

``signals``: SIGINT and SIGTERM to ``plan run``, ``mocker serve`` (both documented to stop
cleanly, exit 0), and to ``load replay`` and ``simulate`` mid-run (exit 130 as after Ctrl-C; for
SIGTERM 143, the CLI's own handler); no traceback, no partial output files.
Forked children are real processes; SIGTERM to ``mocker serve`` goes to the installed console
script itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
from collections.abc import Callable
from pathlib import Path

from tests.fuzz.harness import Case, Ctx, Run

FULL_DISK_BYTES = 100
PREVIOUS = b"previous content\n"

# --- output targets ------------------------------------------------------------------------------


def _device(ctx: Ctx, name: str) -> None:
    """A private null device at ``name`` (root), else a symlink to /dev/null."""
    try:
        os.mknod(ctx / name, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, OSError):
        os.symlink("/dev/null", ctx / name)


def _target(kind: str, name: str) -> Callable[[Ctx], None]:
    """A set-up making the output path ``name`` a ``kind`` (see the module docstring)."""

    def setup(ctx: Ctx) -> None:
        path = ctx / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "link-to-file":
            (ctx / f"real-{name}").write_bytes(PREVIOUS)
            os.symlink(f"real-{name}", path)
        elif kind == "link-to-dir":
            (ctx / f"real-{name}").mkdir()
            os.symlink(f"real-{name}", path)
        elif kind == "directory":
            path.mkdir()
            (path / "keep.txt").write_bytes(PREVIOUS)
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "device":
            _device(ctx, name)
        elif kind == "link-to-device":
            _device(ctx, f"null-{name}")
            os.symlink(f"null-{name}", path)
        elif kind in ("file", "full-disk"):
            path.write_bytes(PREVIOUS)
        elif kind != "missing-parent":
            raise AssertionError(kind)

    return setup


def _link_kept(name: str) -> Callable[[Ctx, Run], str | None]:
    def check(ctx: Ctx, run: Run) -> str | None:
        path = ctx / name
        if not path.is_symlink():
            return f"{name} is no longer a symlink"
        if os.readlink(path) != f"real-{name}":
            return f"{name} now points at {os.readlink(path)}"
        real = ctx / f"real-{name}"
        if run.exit_code == 0 and real.is_file() and real.read_bytes() == PREVIOUS:
            return f"exit 0 but the link's target {real.name} was not written"
        if run.exit_code == 0 and real.is_dir() and not any(real.iterdir()):
            return f"exit 0 but the link's target directory {real.name} is empty"
        return None

    check.__name__ = "link_kept"
    return check


def _no_dash_file(ctx: Ctx, run: Run) -> str | None:
    return "a file named '-' was written" if (ctx / "-").exists() else None


FILE_KINDS: dict[str, tuple[int, ...]] = {
    "link-to-file": (0,),
    "directory": (1,),
    "fifo": (1,),
    "device": (1,),
    "link-to-device": (1,),
    "missing-parent": (0, 1),
    "full-disk": (1,),
}
DIR_KINDS: dict[str, tuple[int, ...]] = {
    "link-to-dir": (0, 1),
    "file": (1,),
    "fifo": (1,),
    "link-to-device": (1,),
    "full-disk": (1,),
}


def _state(ctx: Ctx) -> None:
    """A virtual-connector state with a pending decision (for ``virtual complete``)."""
    state = {"decision_id": 2, "num_prefill_workers": 1, "num_decode_workers": 2}
    (ctx / "real-state.json").write_text(json.dumps({**state, "scaled_decision_id": 1}))


# (label, argv given the output path, "file" | "dir", suffix of the output name, extra Case args)
OutputCommand = tuple[str, Callable[[Ctx, str], list[str]], str, str, dict]
OUTPUT_COMMANDS: list[OutputCommand] = [
    ("trace convert --out", lambda c, o: ["trace", "convert", str(c.world.trace), "--out", o], "file", ".jsonl", {}),
    ("simulate --requests-csv", lambda c, o: ["simulate", str(c.world.trace), "--profile", str(c.world.profile), "--ttft", "3000", "--itl", "100", "--policy", "static", "--requests-csv", o, "-o", "json"], "file", ".csv", {}),
    ("simulate --plot", lambda c, o: ["simulate", str(c.world.trace), "--profile", str(c.world.profile), "--ttft", "3000", "--itl", "100", "--policy", "static", "--plot", o, "-o", "json"], "file", ".png", {}),
    ("predict backtest --csv", lambda c, o: ["predict", "backtest", str(c.world.trace), "--predictors", "constant", "--interval", "5", "--warmup", "2", "--csv", o, "-o", "json"], "file", ".csv", {}),
    ("predict backtest --plot", lambda c, o: ["predict", "backtest", str(c.world.trace), "--predictors", "constant", "--interval", "5", "--warmup", "2", "--plot", o, "-o", "json"], "file", ".png", {}),
    ("load replay --csv", lambda c, o: ["load", "replay", str(c.world.trace), "--url", c.world.mocker_url(), "--duration", "3", "--csv", o, "-o", "json"], "file", ".csv", {"timeout_s": 40.0}),
    ("generate-dgd -f", lambda c, o: ["generate-dgd", "--dgdr", str(c.world.dgdr), "--profile", str(c.world.profile), "-f", o], "file", ".yaml", {}),
    ("dgdr create -f", lambda c, o: ["dgdr", "create", "--name", "x", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--backend", "vllm", "--isl", "1000", "--osl", "100", "--ttft", "300", "--itl", "20", "--profiler-image", "img:1", "-f", o], "file", ".yaml", {}),
    ("virtual complete --state", lambda c, o: ["virtual", "complete", "--state", o, "-o", "json"], "file", ".json", {"state": True}),
    ("profile --offline --out", lambda c, o: ["profile", "--offline", "--model", "llama-3.1-8b", "--system", "h200_sxm", "--backend", "vllm", "--isl", "1000", "--osl", "100", "--ttft", "300", "--itl", "20", "--out", o, "--no-plots", "-o", "json"], "dir", "", {}),
    ("dgdr run --no-cluster --out", lambda c, o: ["dgdr", "run", str(c.world.dgdr), "--no-cluster", "--out", o, "-o", "json"], "dir", "", {}),
    ("demo --quick --out", lambda c, o: ["demo", "--quick", "--out", o, "-o", "json"], "dir", "", {"timeout_s": 60.0, "only": ("file", "full-disk")}),
]  # fmt: skip


def _output_cases() -> list[Case]:
    cases = []
    for label, argv, form, suffix, extra in OUTPUT_COMMANDS:
        extra = dict(extra)
        state = extra.pop("state", False)
        only = extra.pop("only", None)
        kinds = FILE_KINDS if form == "file" else DIR_KINDS
        for kind, expect in kinds.items():
            if only is not None and kind not in only:
                continue
            if state and kind in ("missing-parent", "full-disk"):
                continue  # a state file must exist: nothing to create, too small to fill a disk
            name = ("nodir/out" if kind == "missing-parent" else "out") + suffix
            # a directory output on a full disk: a new directory (nothing may be left of it)
            setup = _target(
                "missing-parent" if (form, kind) == ("dir", "full-disk") else kind, name
            )
            checks: tuple = ()
            if kind in ("link-to-file", "link-to-dir"):
                checks = (_link_kept(name),)
            if state and kind == "link-to-file":
                setup = _state_target(kind, name)
            cases.append(
                Case(
                    "outputs",
                    f"{label} onto {kind.replace('-', ' ')}",
                    lambda c, a=argv, n=name: a(c, n),  # type: ignore[misc]
                    expect,
                    setup=setup,
                    checks=checks,
                    fsize=FULL_DISK_BYTES if kind == "full-disk" else None,
                    **extra,
                )
            )
    cases.append(
        Case(
            "outputs",
            "generate-dgd -f - (stdout)",
            lambda c: [
                "generate-dgd",
                "--dgdr",
                c.world.dgdr,
                "--profile",
                c.world.profile,
                "-f",
                "-",
            ],
            (0,),
            checks=(_no_dash_file, _stdout_has("kind: DynamoGraphDeployment")),
        )
    )
    return cases


def _state_target(kind: str, name: str) -> Callable[[Ctx], None]:
    """For ``virtual complete --state``: the link-to-file's target holds a real state, written
    after :func:`_target` made it."""

    def setup(ctx: Ctx) -> None:
        _target(kind, name)(ctx)
        _state(ctx)
        (ctx / f"real-{name}").write_bytes((ctx / "real-state.json").read_bytes())
        (ctx / "real-state.json").unlink()

    return setup


def _stdout_has(needle: str) -> Callable[[Ctx, Run], str | None]:
    def check(ctx: Ctx, run: Run) -> str | None:
        return None if needle in run.stdout else f"stdout lacks {needle!r}"

    return check


# --- signals -------------------------------------------------------------------------------------


def _stderr_after(needle: str, at_least_s: float, fallback_s: float) -> Callable:
    """Ready to signal once stderr shows ``needle`` (and ``at_least_s`` passed), or after
    ``fallback_s`` whatever it shows."""

    def ready(ctx: Ctx, logs: Path, elapsed: float) -> bool:
        if elapsed >= fallback_s:
            return True
        if elapsed < at_least_s:
            return False
        with contextlib.suppress(OSError):
            return needle in (logs / "stderr").read_text(errors="replace")
        return False

    return ready


def _stdout_after(needle: str, fallback_s: float) -> Callable:
    def ready(ctx: Ctx, logs: Path, elapsed: float) -> bool:
        if elapsed >= fallback_s:
            return True
        with contextlib.suppress(OSError):
            return needle in (logs / "stdout").read_text(errors="replace")
        return False

    return ready


def _signal_cases() -> list[Case]:
    plan_run = lambda c: [  # noqa: E731
        "plan", "run", "--profile", c.world.profile, "--model", "llama-3.1-8b",
        "--connector", "virtual", "--state", "state.json",
        "--prometheus-url", c.world.bad_server("prom_empty"), "--interval", "1",
        "--startup-s", "0", "--metrics-port", "0",
    ]  # fmt: skip
    mocker = lambda c: ["mocker", "serve", "--profile", c.world.profile, "--port", "0"]  # noqa: E731
    replay = lambda c: [  # noqa: E731
        "load", "replay", c.world.trace_full, "--url", c.world.mocker_url(), "--csv", "req.csv",
        "-o", "json",
    ]  # fmt: skip
    simulate = lambda c: [  # noqa: E731
        "simulate", c.world.trace_full, c.world.trace_full, c.world.trace_full,
        "--profile", c.world.profile, "--ttft", "3000", "--itl", "100",
        "--compare", "--requests-csv", "req.csv", "--plot", "sim.png", "-o", "json",
    ]  # fmt: skip
    commands = [
        ("plan run", plan_run, _stderr_after("{", 1.0, 6.0), {"INT": (0,), "TERM": (0,)}, ("state.json",)),
        ("mocker serve", mocker, _stdout_after("serving", 6.0), {"INT": (0,), "TERM": (0,)}, ()),
        ("load replay", replay, _stderr_after("", 1.5, 1.5), {"INT": (130,), "TERM": (143,)}, ()),
        # --compare over three copies of the trace runs for many seconds: signalled after 1 s
        ("simulate", simulate, _stderr_after("", 1.0, 1.0), {"INT": (130,), "TERM": (143,)}, ()),
    ]  # fmt: skip
    cases = []
    for label, argv, ready, expect, may_write in commands:
        for name, sig in (("INT", signal.SIGINT), ("TERM", signal.SIGTERM)):
            # forked children are real processes too; one case runs the console script itself
            cases.append(
                Case(
                    "signals",
                    f"SIG{name} to {label}",
                    argv,
                    expect[name],
                    exec=(label, name) == ("mocker serve", "TERM"),
                    signal=sig,
                    ready=ready,
                    timeout_s=30.0,
                    may_write=may_write,
                )
            )
    return cases


def cases() -> list[Case]:
    return [*_output_cases(), *_signal_cases()]
