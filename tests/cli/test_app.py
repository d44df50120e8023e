"""The root command: help lists exit codes, version, usage errors exit 2."""

from pathlib import Path

import pytest

from tests.conftest import run_cli


def test_help_documents_exit_codes() -> None:
    result = run_cli("--help")
    assert result.exit_code == 0
    for code in (
        "0 ok", "1 invalid input", "2 usage", "3 an outside service", "4 the SLA",
        "130 interrupted", "143 terminated",
    ):  # fmt: skip
        assert code in result.stdout


def test_version() -> None:
    result = run_cli("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("dynamo-plan ")


def test_unknown_command_is_usage_error() -> None:
    result = run_cli("no-such-command")
    assert result.exit_code == 2


def test_unwritable_output_is_one_line_exit_1(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """An OSError escaping a command (here: a CSV path inside a missing folder) is bad input."""
    target = tmp_path / "no-such-dir" / "forecasts.csv"
    result = run_cli("predict", "backtest", "--predictors", "constant", "--csv", target)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error:") and "Traceback" not in result.stderr


def test_python_dash_m_runs_the_same_cli() -> None:
    """``python -m dynamo_plan`` is the console script: same help, same usage-error exit code."""
    import subprocess
    import sys

    ok = subprocess.run(
        [sys.executable, "-m", "dynamo_plan", "--version"], capture_output=True, text=True
    )
    assert ok.returncode == 0 and ok.stdout.startswith("dynamo-plan ")
    bad = subprocess.run(
        [sys.executable, "-m", "dynamo_plan", "trace", "stats", "/no/such/file.jsonl"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1
    assert bad.stderr.strip().startswith("error:") and "Traceback" not in bad.stderr


def test_sigterm_mid_write_removes_partial_outputs_and_exits_143(
    shared_data: Path, tmp_path: Path
) -> None:
    """Issue 11: SIGTERM to ``simulate`` while it wrote an output left ``.sim.png.<x>.tmp``
    (the process died of the signal, so the atomic writer's clean-up never ran). Now SIGTERM
    takes Ctrl-C's path: the temporary file is removed, one line on stderr, exit 143."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from dynamo_plan.resources import shipped_file

    trace = str(shipped_file("sample_traces", "mooncake_conversation_10min.jsonl"))
    profile = shared_data / "profiles" / "h200_llama3.1-8b-fp8_tp1p_tp1d"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dynamo_plan", "simulate", trace, trace, "--profile", str(profile),
         "--ttft", "3000", "--itl", "100", "--requests-csv", "req.csv", "--plot", "sim.png",
         "-o", "json"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        writing: list[str] = []
        while proc.poll() is None and not writing and time.monotonic() < deadline:
            writing = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
            time.sleep(0.001)
        assert writing, "simulate ended (or timed out) before it wrote an output"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, (writing, err)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    assert out == "" and "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[-1] == "interrupted (SIGTERM)" and sum("interrupted" in x for x in lines) == 1
    assert os.listdir(tmp_path) == [] or set(os.listdir(tmp_path)) <= {"req.csv"}


def test_an_interrupt_inside_an_exception_group_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Ctrl-C or SIGTERM raised inside an event loop's task group (httpx/anyio) arrives wrapped
    in an exception group: still one line and 130 / 143, never a traceback."""
    import dynamo_plan.trace as trace_pkg
    from dynamo_plan.cli.app import Terminated

    trace = tmp_path / "t.jsonl"
    trace.write_text('{"timestamp": 0, "input_length": 10, "output_length": 5}\n')
    for raised, code, line in (
        (Terminated(), 143, "interrupted (SIGTERM)"),
        (KeyboardInterrupt(), 130, "interrupted"),
    ):

        def boom(*args: object, exc: BaseException = raised, **kwargs: object) -> None:
            raise BaseExceptionGroup("unhandled errors in a TaskGroup", [ExceptionGroup("inner", [ValueError()]), exc])  # fmt: skip

        monkeypatch.setattr(trace_pkg, "trace_stats", boom)
        result = run_cli("trace", "stats", trace)
        assert result.exit_code == code
        assert result.stderr.strip() == line and "Traceback" not in result.stderr
