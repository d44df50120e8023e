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
