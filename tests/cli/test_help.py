"""``--help`` at 80 columns: every flag whole, metavars a user understands (no Python types),
flags without a type, ``-o`` always an output format; start-up without heavy libraries."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from typer.core import TyperArgument, TyperOption
from typer.testing import CliRunner

from dynamo_plan.cli.app import COMMANDS, app, load_command

HEAVY = ("numpy", "pandas", "matplotlib", "kubernetes", "httpx", "scipy", "pmdarima")
METAVAR = re.compile(r"^[A-Z][A-Z0-9_]*(=[A-Z]+)?(\[,([A-Z]+|N)?…\])?$")  # MS, N[,N…], KEY=VALUE
PYTHON_TYPE = re.compile(r"<(int|float|str|bool|path|file|dir|list\[[^>]*\]|[a-z]+(\|[a-z]+)+)>")


def _commands() -> Iterator[tuple[list[str], Any]]:
    """(path, click command) of every command, groups included (``[]`` is the root)."""

    def walk(path: list[str], command: Any) -> Iterator[tuple[list[str], Any]]:
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk([*path, name], sub)

    for name in COMMANDS:
        yield from walk([name], load_command(name))


ALL = list(_commands())


def _help(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("path", [[], *(p for p, _ in ALL)], ids=lambda p: " ".join(p) or "root")
def test_help_fits_80_columns_with_whole_flags_and_no_python_types(path: list[str]) -> None:
    text = _help(*path)
    assert max(len(line) for line in text.splitlines()) <= 80, text
    assert not PYTHON_TYPE.search(text), text
    assert "…" not in re.sub(r"\[,[A-Z]*…\]", "", text), text  # nothing cut (N[,N…] is a metavar)
    command = dict((tuple(p), c) for p, c in ALL).get(tuple(path))
    for param in getattr(command, "params", []):
        for name in [*param.opts, *getattr(param, "secondary_opts", [])]:
            if name.startswith("-"):
                assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text), (name, text)


@pytest.mark.parametrize(("path", "command"), ALL, ids=[" ".join(p) for p, _ in ALL])
def test_every_option_has_a_user_metavar_and_flags_have_none(path: list[str], command: Any) -> None:
    for param in command.params:
        if isinstance(param, TyperOption) and param.is_flag:
            assert param.metavar == "", (path, param.opts)
        elif isinstance(param, TyperOption | TyperArgument):
            assert param.metavar and METAVAR.match(param.metavar), (path, param.name, param.metavar)


@pytest.mark.parametrize(("path", "command"), ALL, ids=[" ".join(p) for p, _ in ALL])
def test_dash_o_is_an_output_format_everywhere(path: list[str], command: Any) -> None:
    for param in command.params:
        if "-o" in param.opts:
            assert param.opts == ["--output", "-o"] or param.opts == ["-o", "--output"], path
            assert param.metavar == "FORMAT", path


def test_help_lists_every_command_without_importing_it() -> None:
    text = _help()
    for name, entry in COMMANDS.items():
        assert re.search(rf"^  {re.escape(name)} ", text, re.M), name
        assert " ".join(entry.summary.split()[:4]) in " ".join(text.split())


def _imported(*code: str) -> set[str]:
    """Top-level packages imported by ``python -X importtime -c CODE`` (a fresh interpreter)."""
    env = {**os.environ, "COLUMNS": "80"}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "\n".join(code)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def test_importing_the_cli_imports_no_heavy_library() -> None:
    imported = _imported("import dynamo_plan.cli.app")
    assert "dynamo_plan" in imported  # the parse works
    assert not imported & set(HEAVY), imported & set(HEAVY)


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["simulate", "--help"],
        ["predict", "backtest", "--help"],
        ["plan", "decide", "--help"],
        ["plan", "run", "--help"],
        ["profile", "--help"],
        ["estimate", "--help"],
        ["trace", "stats", "--help"],
        ["dgdr", "validate", "--help"],
        ["demo", "--help"],
    ],
    ids=" ".join,
)
def test_help_imports_no_heavy_library(argv: list[str]) -> None:
    """``--help`` of a command imports its module only; heavy libraries wait for the work."""
    imported = _imported(
        "import sys",
        "from dynamo_plan.cli.app import main",
        f"sys.argv = ['dynamo-plan', *{argv!r}]",
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code",
    )
    assert not imported & set(HEAVY), imported & set(HEAVY)
