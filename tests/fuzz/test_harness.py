"""The fuzz harness's own checks can fail: each is shown a defect and must report it.

A harness that passes everything is worthless; these tests feed :func:`judge` and
:func:`partial_problems` the defects the issue lists (a traceback, a hang, a wrong code, a link
replaced by a file, a device replaced, a partial file, an empty directory, a changed file) and run
real children through the fork server: a server that never stops is reported as a hang, a signal
reaches it, and the full-disk limit makes a write fail.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.fuzz.harness import Case, Ctx, Run, judge, partial_problems, run_case, snapshot
from tests.fuzz.report import counts_table
from tests.fuzz.world import World


def _case(expect: tuple[int, ...] = (1,), **kw: object) -> Case:
    return Case("settings", "t", lambda c: [], expect, **kw)  # type: ignore[arg-type]


def _run(code: int | None, stderr: str = "error: bad\n", **kw: object) -> Run:
    return Run(code, "", stderr, 0.1, code is None, **kw)  # type: ignore[arg-type]


def _kinds(case: Case, run: Run, tmp_path: Path) -> set[str]:
    ctx = Ctx(tmp_path, None)  # type: ignore[arg-type]
    outcome = judge(case, ctx, run, snapshot(tmp_path))
    return {k for k, v in outcome.problems.items() if v}


def test_judge_reports_each_kind(tmp_path: Path) -> None:
    assert _kinds(_case(), _run(1), tmp_path) == set()
    assert _kinds(_case(), _run(0, ""), tmp_path) == {"exit"}
    assert _kinds(_case(), _run(None), tmp_path) == {"hang"}
    trace = "Traceback (most recent call last):\n  File x\nValueError: y\n"
    assert _kinds(_case(), _run(1, trace), tmp_path) == {"traceback", "message"}
    assert _kinds(_case(), _run(1, "error: a\n  and a second line\n"), tmp_path) == {"message"}
    assert _kinds(_case(), _run(1, ""), tmp_path) == {"message"}
    # Click's usage errors (exit 2) may show the usage box; an interrupt may say so
    assert _kinds(_case((2,)), _run(2, "Usage: x\nError: Missing option\n"), tmp_path) == set()
    assert _kinds(_case((130,)), _run(130, "interrupted\n", signalled=True), tmp_path) == set()
    failing = _case(checks=(lambda c, r: "no", lambda c, r: None))
    assert _kinds(failing, _run(1), tmp_path) == {"check"}


def test_partial_problems(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("old")
    (tmp_path / "real.txt").write_text("old")
    os.symlink("real.txt", tmp_path / "link.txt")
    os.mkfifo(tmp_path / "fifo")
    before = snapshot(tmp_path)
    assert partial_problems(before, snapshot(tmp_path), True, ()) == []

    (tmp_path / ".out.csv.1a2b.tmp").write_text("half")
    (tmp_path / "demo").mkdir()
    problems = partial_problems(before, snapshot(tmp_path), False, ())
    assert problems == ["temporary file left: .out.csv.1a2b.tmp", "new empty directory: demo"]
    (tmp_path / ".out.csv.1a2b.tmp").unlink()
    (tmp_path / "demo").rmdir()

    # a successful command may write files and replace a link's target; a failed one may not
    (tmp_path / "new.csv").write_text("rows")
    (tmp_path / "real.txt").write_text("new")
    assert partial_problems(before, snapshot(tmp_path), False, ()) == []
    assert partial_problems(before, snapshot(tmp_path), True, ()) == [
        "left by a failed command: new.csv (file)",
        "changed by a failed command: real.txt (file -> file)",
    ]
    assert partial_problems(before, snapshot(tmp_path), True, ("new.csv", "real.txt")) == []
    (tmp_path / "new.csv").unlink()
    (tmp_path / "real.txt").write_text("old")

    # a link or a FIFO replaced by a regular file
    (tmp_path / "link.txt").unlink()
    (tmp_path / "link.txt").write_text("x")
    (tmp_path / "fifo").unlink()
    (tmp_path / "fifo").write_text("x")
    assert partial_problems(before, snapshot(tmp_path), True, ()) == [
        "changed by a failed command: fifo (fifo -> file)",
        "changed by a failed command: link.txt (link -> file)",
    ]


def test_counts_table() -> None:
    table = counts_table(
        [("traces", set(), 1.0), ("traces", {"hang", "exit"}, 2.0), ("outputs", {"partial"}, 0.4)]
    )
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["class", "cases", "passed"]
    assert lines[2].split() == ["traces", "2", "1", "0", "1", "1", "0", "0", "0", "3"]
    assert lines[3].split() == ["outputs", "1", "0", "0", "0", "0", "1", "0", "0", "0"]
    assert lines[-1].split() == ["total", "3", "1", "0", "1", "1", "1", "0", "0", "3"]


@pytest.fixture(scope="module")
def harness_world() -> World:
    """A world without the good inputs (these children need none)."""
    import shutil
    import tempfile

    w = World.__new__(World)
    w.root = Path(tempfile.mkdtemp(prefix="dynamo-plan-fuzz-meta-"))
    yield w  # type: ignore[misc]
    shutil.rmtree(w.root, ignore_errors=True)


def _mocker(ctx: Ctx) -> list[str]:
    """``mocker serve`` on a profile made in the case directory: it serves until stopped."""
    return ["mocker", "serve", "--profile", "prof", "--port", "0"]


def _make_profile(ctx: Ctx) -> None:
    from tests.conftest import run_cli

    made = run_cli(
        "profile", "--offline", "--model", "llama-3.1-8b", "--system", "h200_sxm",
        "--backend", "vllm", "--isl", "1000", "--osl", "100", "--ttft", "300", "--itl", "20",
        "--out", ctx / "prof", "--no-plots",
    )  # fmt: skip
    assert made.exit_code == 0, made.stderr


def test_a_server_that_never_stops_is_a_hang(harness_world: World) -> None:
    case = Case("signals", "hang", _mocker, (0,), setup=_make_profile, timeout_s=3.0)
    outcome = run_case(case, harness_world)
    assert outcome.run.hung and outcome.problems["hang"], outcome.summary()


def test_a_signal_reaches_the_child(harness_world: World) -> None:
    def serving(ctx: Ctx, logs: Path, elapsed: float) -> bool:
        out = logs / "stdout"
        return (out.exists() and "serving" in out.read_text()) or elapsed > 8

    case = Case(
        "signals", "stop", _mocker, (0,), setup=_make_profile, signal=signal.SIGINT,
        ready=serving, timeout_s=20.0,
    )  # fmt: skip
    outcome = run_case(case, harness_world)
    assert outcome.run.signalled and outcome.run.exit_code == 0, outcome.summary()
    assert "serving" in outcome.run.stdout


def test_the_full_disk_limit_fails_writes(harness_world: World) -> None:
    """Under ``fsize`` the same command that writes its file fails with EFBIG, and its stderr
    (through a pipe) still arrives whole."""
    argv = [
        "dgdr", "create", "--name", "x", "--model", "m/m", "--backend", "vllm", "--isl", "10",
        "--osl", "10", "--ttft", "300", "--itl", "20", "--profiler-image", "i:1", "-f", "d.yaml",
    ]  # fmt: skip
    free = run_case(Case("outputs", "free", lambda c: argv, (0,)), harness_world)
    assert free.ok, free.summary()
    full = run_case(Case("outputs", "full", lambda c: argv, (1,), fsize=100), harness_world)
    assert full.run.exit_code == 1 and "too large" in full.run.stderr.lower(), full.summary()
