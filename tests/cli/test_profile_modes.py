"""``dynamo-plan profile``'s three modes (dynamo_plan/cli/profile/): the flag form picks the
mode, each mode takes only its own flags (another mode's flag is exit 2 naming that mode), a
StrEnum choice outside its values is one usage line, and ``profile MODE`` is the same command."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli

LLAMA = ["--model", "llama-3.1-8b", "--system", "h200_sxm", "--backend", "vllm"]
SLA = ["--isl", "3000", "--osl", "150", "--ttft", "200", "--itl", "20"]
URL = "http://127.0.0.1:1"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--offline", *LLAMA, *SLA, "--tp", "2"],
            "profile --offline does not take --tp (--tp: profile --online --endpoint)",
        ),
        (
            ["--offline", *LLAMA, *SLA, "-n", "ns", "--poll", "1"],
            "profile --offline does not take --poll, -n (--poll: profile --online --dgdr; "
            "-n: profile --online --endpoint or profile --online --dgdr)",
        ),
        (
            ["--online", "--endpoint", URL, "--isl", "10", "--osl", "10", "--system", "h200_sxm"],
            "profile --online --endpoint does not take --system (--system: profile --offline)",
        ),
        (
            ["--online", "--dgdr", "d.yaml", "--out", "o", "--no-plots", "--role", "decode"],
            "profile --online --dgdr does not take --role (--role: profile --online --endpoint)",
        ),
        (
            ["--online", "--dgdr", "d.yaml", "--osl=10"],
            "profile --online --dgdr does not take --osl (--osl: profile --offline or profile "
            "--online --endpoint)",
        ),
    ],
)
def test_a_flag_of_another_mode_is_exit_2_naming_its_mode(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = run_cli("profile", *args, "--out", tmp_path / "p")
    assert result.exit_code == 2, result.stderr
    assert result.stderr == f"error: {message}\n" and result.stdout == ""
    assert not (tmp_path / "p").exists()


def test_a_value_that_looks_like_a_flag_is_a_value(tmp_path: Path) -> None:
    """``--model --tp``: ``--tp`` is --model's value, not endpoint's flag."""
    result = run_cli("profile", "--offline", "--model", "--tp", "--out", tmp_path / "p")
    assert result.exit_code == 2 and "does not take" not in result.stderr
    assert "profile --offline needs --dgdr FILE or --backend" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--offline", "--estimator", "x"], "--estimator must be one of roofline, aiconfigurator, auto, got 'x'"),
        (["--offline", "--backend=tgi"], "--backend must be one of vllm, sglang, trtllm, got 'tgi'"),
        (["--online", "--endpoint", URL, "--role", "x"], "--role must be one of prefill, decode, both, got 'x'"),
        (["--online", "--endpoint", URL, "--api", "grpc"], "--api must be chat or completions, got 'grpc'"),
    ],
)  # fmt: skip
def test_a_choice_outside_the_enum_is_one_usage_line(args: list[str], message: str) -> None:
    result = run_cli("profile", *args)
    assert result.exit_code == 2 and result.stderr == f"error: {message}\n"


def test_the_mode_as_a_command_gives_the_same_profile(tmp_path: Path) -> None:
    args = [*LLAMA, *SLA, "--no-plots", "-o", "json"]
    flag = run_cli("profile", "--offline", *args, "--out", tmp_path / "a")
    command = run_cli("profile", "offline", *args, "--out", tmp_path / "b")
    assert flag.exit_code == command.exit_code == 0, flag.stderr + command.stderr
    a, b = flag.json(), command.json()
    assert a["prefill"] == b["prefill"] and a["decode"] == b["decode"]


def test_a_mode_command_rejects_another_modes_flag() -> None:
    result = run_cli("profile", "endpoint", "--endpoint", URL, "--estimator", "roofline")
    assert result.exit_code == 2
    assert "profile --online --endpoint does not take --estimator" in result.stderr


@pytest.mark.parametrize(
    ("args", "usage", "flags"),
    [
        (["--offline"], "profile offline", ["--estimator", "--model-config", "--dgdr"]),
        (["--online", "--endpoint", URL], "profile endpoint", ["--role", "--result-label"]),
        (["--online", "--dgdr", "x.yaml"], "profile cluster", ["--poll", "--job-timeout"]),
    ],
)
def test_help_of_the_flag_form_lists_that_modes_flags_only(
    args: list[str], usage: str, flags: list[str]
) -> None:
    result = run_cli("profile", *args, "--help")
    assert result.exit_code == 0 and f"Usage: dynamo-plan {usage} [OPTIONS]" in result.stdout
    assert all(f in result.stdout for f in flags)
    others = {"--estimator", "--role", "--poll"} - set(flags)
    assert not [f for f in others if f"{f} " in result.stdout]


def test_help_names_the_three_forms() -> None:
    for args in (["--help"], ["--online", "--help"]):
        result = run_cli("profile", *args)
        assert result.exit_code == 0
        for form in ("profile --offline", "--online --endpoint URL", "--online --dgdr FILE"):
            assert form in result.stdout
