"""The root command: help lists exit codes, version, usage errors exit 2."""

from tests.conftest import run_cli


def test_help_documents_exit_codes() -> None:
    result = run_cli("--help")
    assert result.exit_code == 0
    for code in ("0 ok", "1 invalid input", "2 usage", "3 an outside service", "4 the SLA"):
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
