"""The ``dynamo-plan`` command: the root Typer app, error handling and exit codes.

Start-up: each command lives in its own module (``dynamo_plan.cli.<module>``) and is imported
only when it runs or shows its help; ``dynamo-plan --help`` lists the commands from
:data:`COMMANDS` without importing any of them. Heavy libraries (numpy, pandas, matplotlib,
kubernetes, httpx, scipy) are imported inside command bodies, so ``--help`` stays fast
(``benchmarks/startup.py``).

Help is click's plain layout (typer's rich panels cut long flag names at 80 columns): one line
per option, ``--flag METAVAR`` then its help, the help on the next line when the flag is long;
words are never broken at hyphens, so ``--min-endpoint`` stays whole in a help text.
"""

from __future__ import annotations

import importlib
import inspect
import re
import signal
from typing import Any, NamedTuple

import typer
from rich.markup import escape
from typer.core import TyperArgument, TyperGroup, TyperOption

from dynamo_plan import __version__
from dynamo_plan.cli.output import err_console
from dynamo_plan.errors import DynamoPlanError

EXIT_CODES_HELP = (
    "Exit codes: 0 ok · 1 invalid input · 2 usage error · "
    "3 an outside service failed (cluster, Prometheus, etcd) · 4 the SLA cannot be met · "
    "130 interrupted (Ctrl-C) · 143 terminated (SIGTERM)."
)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread by :func:`main`'s handler: it takes Ctrl-C's path
    (``with`` blocks and ``finally`` clean up, partial outputs are removed, one line on stderr)
    but exits with ``exit_code`` 143 (128 + SIGTERM, the shell's convention)."""

    exit_code = 143


def _on_sigterm(signum: int, frame: Any) -> None:
    # a second SIGTERM during the clean-up ends the process at once (the default action)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise Terminated


def _interrupt_in(error: BaseException) -> KeyboardInterrupt | None:
    """``error`` itself when it is Ctrl-C or SIGTERM, else the first interrupt inside an
    exception group (nested groups included); None when there is none."""
    if isinstance(error, KeyboardInterrupt):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = _interrupt_in(inner)
            if found is not None:
                return found
    return None


class Entry(NamedTuple):
    """A command of the root: ``module.attribute`` is a Typer app (a command group) or a
    command function; ``summary`` is its line in ``dynamo-plan --help`` (and, for a function,
    its help)."""

    module: str
    attribute: str
    summary: str


#: The root's commands, in the order ``--help`` lists them.
COMMANDS: dict[str, Entry] = {
    "profile": Entry(
        "dynamo_plan.cli.profile",
        "app",
        "Size prefill/decode engines for an SLA and write a performance profile.",
    ),
    "estimate": Entry(
        "dynamo_plan.cli.estimate",
        "estimate",
        "Estimate prefill TTFT / decode ITL and tokens/s/GPU offline (no GPU).",
    ),
    "simulate": Entry(
        "dynamo_plan.cli.simulate",
        "simulate",
        "Replay a trace through a simulated deployment scaled by a policy (or --compare all).",
    ),
    "demo": Entry(
        "dynamo_plan.cli.demo",
        "demo",
        "Offline demo: estimate a profile, replay a bundled trace, compare policies.",
    ),
    "generate-dgd": Entry(
        "dynamo_plan.cli.generate",
        "generate_dgd",
        "Render a DynamoGraphDeployment (+ Planner, its RBAC and profile ConfigMap) from a DGDR.",
    ),
    "apply": Entry(
        "dynamo_plan.cli.apply",
        "apply",
        "Server-side apply a manifest (field manager dynamo-plan); --wait for Ready.",
    ),
    "delete": Entry("dynamo_plan.cli.apply", "delete", "Delete every object of a manifest."),
    "doctor": Entry(
        "dynamo_plan.cli.doctor",
        "doctor",
        "Check a cluster for Dynamo: CRDs, GPUs, pull secret, Prometheus, planner RBAC, stuck "
        "DGDRs.",
    ),
    "predict": Entry(
        "dynamo_plan.cli.predict",
        "app",
        "Load predictors: rolling-origin backtests on request traces; the list of predictors.",
    ),
    "plan": Entry(
        "dynamo_plan.cli.plan",
        "app",
        "Planner decisions: replicas per role for a load, an SLA and a profile; the live planner.",
    ),
    "trace": Entry(
        "dynamo_plan.cli.trace",
        "app",
        "Request traces: statistics, and conversion to Mooncake JSONL.",
    ),
    "dgdr": Entry(
        "dynamo_plan.cli.dgdr",
        "app",
        "DynamoGraphDeploymentRequests: validate, create, run the workflow, show status.",
    ),
    "mocker": Entry(
        "dynamo_plan.cli.mocker",
        "app",
        "GPU-free stand-in for a Dynamo frontend and workers (OpenAI-compatible, /metrics).",
    ),
    "load": Entry(
        "dynamo_plan.cli.load",
        "app",
        "Drive an OpenAI-compatible endpoint with a trace's arrivals and lengths.",
    ),
    "virtual": Entry(
        "dynamo_plan.cli.virtual",
        "app",
        "The environment's side of the virtual connector: read, wait for, complete decisions.",
    ),
}


class _Argument(TyperArgument):
    """An argument whose help row shows its metavar only (typer adds a Python type)."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


_NO_BREAK = "\u2011"  # a non-breaking hyphen, while text is wrapped
_GLUE = "\u00a0"  # a non-breaking space: "[default: 60.0]" stays on one line
_BRACKETS = re.compile(r"\[[^\]\n]{1,40}\]")


def _glue(match: re.Match[str]) -> str:
    return match.group(0).replace(" ", _GLUE)


class _Formatter(typer.Context.formatter_class):  # type: ignore[misc,valid-type]
    """click's help formatter, except that a word is never broken at a hyphen (``--min-endpoint``
    stays whole) and a short bracket such as ``[default: 60.0]`` stays on one line."""

    def write_text(self, text: str) -> None:
        start = len(self.buffer)
        super().write_text(text.replace("-", _NO_BREAK))
        self._restore(start)

    def write_dl(self, rows: Any, col_max: int = 30, col_spacing: int = 2) -> None:
        start = len(self.buffer)
        rows = [
            (first, _BRACKETS.sub(_glue, second.replace("-", _NO_BREAK))) for first, second in rows
        ]
        super().write_dl(rows, col_max, col_spacing)
        self._restore(start)

    def _restore(self, start: int) -> None:
        self.buffer[start:] = [
            s.replace(_NO_BREAK, "-").replace(_GLUE, " ") for s in self.buffer[start:]
        ]


class _Context(typer.Context):
    formatter_class = _Formatter


def _unwrap(text: str) -> str:
    """``text`` (a docstring) with each paragraph on one line, to reflow at any width."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split()) for p in paragraphs)


def tidy_help(command: Any) -> None:
    """Presentation of ``--help``, for ``command`` and every subcommand (module doc): plain
    layout; help paragraphs reflow to the terminal's width; a command's line in its group's
    list is its whole first paragraph (click would cut it); a flag (``--help`` too) shows no
    type, an argument no Python type; options carry their metavar (``MS``, ``FILE``, …) in
    their declaration."""
    command.rich_markup_mode = None
    command.context_class = _Context
    if command.help:
        command.help = _unwrap(command.help)
        command.short_help = command.short_help or command.help.split("\n\n")[0]
    help_option = command.get_help_option(typer.Context(command))
    if help_option is not None and help_option.default is None:
        # an absent --help is False, not None: typer would import pydantic to coerce None
        help_option.default = False
    for param in [*command.params, help_option]:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
        elif isinstance(param, TyperArgument) and not isinstance(param, _Argument):
            param.__class__ = _Argument
    for sub in getattr(command, "commands", {}).values():
        tidy_help(sub)


def load_command(name: str) -> Any:
    """Import the module of root command ``name`` and build its click command (tidied)."""
    entry = COMMANDS[name]
    target = getattr(importlib.import_module(entry.module), entry.attribute)
    if isinstance(target, typer.Typer):
        command: Any = typer.main.get_group(target)
        command.short_help = entry.summary
    else:
        single = typer.Typer(add_completion=False, rich_markup_mode=None)
        single.command(name, help=entry.summary)(target)
        command = typer.main.get_command(single)
    command.name = name
    tidy_help(command)
    return command


class _ErrorHandlingGroup(TyperGroup):
    """Turns every DynamoPlanError (raised by any subcommand) into one red line and its exit code."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tidy_help(self)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except DynamoPlanError as e:
            err_console.print(
                f"[red]error:[/] {escape(str(e))}", soft_wrap=True, markup=True, emoji=False
            )
            raise typer.Exit(e.exit_code) from e
        except OSError as e:  # a file the user named cannot be read or written: bad input
            where = f": {e.filename}" if e.filename else ""
            err_console.print(
                f"[red]error:[/] {escape(e.strerror or str(e))}{escape(where)}",
                soft_wrap=True,
                emoji=False,
            )
            raise typer.Exit(1) from e
        except (KeyboardInterrupt, BaseExceptionGroup) as e:  # Ctrl-C, or SIGTERM (see main)
            # raised inside an event loop's task group (httpx/anyio), the interrupt arrives
            # wrapped in an exception group: the same one line and exit code
            interrupt = _interrupt_in(e)
            if interrupt is None:
                raise
            terminated = isinstance(interrupt, Terminated)
            err_console.print(
                "[red]interrupted (SIGTERM)[/]" if terminated else "[red]interrupted[/]"
            )
            raise typer.Exit(Terminated.exit_code if terminated else 130) from None

    # Commands load on first use (module doc). While the index is printed (format_help), a
    # command not loaded yet is listed from its summary, without importing its module.
    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *(n for n in super().list_commands(ctx) if n not in COMMANDS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self.commands or cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        if self._listing:
            summary = COMMANDS[cmd_name].summary
            return typer.core.TyperCommand(cmd_name, help=summary, short_help=summary)
        self.commands[cmd_name] = load_command(cmd_name)
        return self.commands[cmd_name]

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="dynamo-plan",
    cls=_ErrorHandlingGroup,
    help="Turn an LLM-serving SLA into a right-sized disaggregated deployment, and keep it "
    "right-sized.\n\n" + EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dynamo-plan {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """dynamo-plan."""


def main() -> None:
    """Console-script entry point (exits with the documented exit code).

    SIGTERM becomes :class:`Terminated` (a KeyboardInterrupt): the command stops as after
    Ctrl-C, removing its partial outputs, and exits 143 — unless SIGTERM is ignored or already
    handled by whoever started us. Commands that stop cleanly on SIGTERM (``plan run``,
    ``mocker serve``) install their own handler while they run."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)
    app(prog_name="dynamo-plan")
