"""``dynamo-plan profile``: write a Dynamo-layout performance profile, in one of three modes,
one module each (its options, its ``StrEnum`` choices, parse → call → render):

\b
  profile --offline ...                 offline.py   estimate (no GPU)
  profile --online --endpoint URL ...   endpoint.py  measure the engine behind URL
  profile --online --dgdr FILE ...      cluster.py   measure each candidate TP in a cluster

The flag form above is the documented one; ``profile offline|endpoint|cluster ...`` is the
same. :class:`ProfileGroup` picks the mode from --offline/--online/--endpoint/--dgdr and hands
the rest to that mode's command; a flag of another mode is a usage error (exit 2) naming the
mode(s) it belongs to. Which flag belongs where is read from the modes' own parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import typer
from typer.core import TyperGroup, TyperOption

from dynamo_plan.cli.profile.cluster import cluster
from dynamo_plan.cli.profile.common import ModeCommand
from dynamo_plan.cli.profile.endpoint import endpoint
from dynamo_plan.cli.profile.offline import offline
from dynamo_plan.errors import UsageError

#: mode → its documented (flag) form, used in messages
LABELS = {
    "offline": "profile --offline",
    "endpoint": "profile --online --endpoint",
    "cluster": "profile --online --dgdr",
}
_SELECTORS = ("--offline", "--online")


class ProfileGroup(TyperGroup):
    """The ``profile`` command: the flag form (``--offline``, ``--online --endpoint``,
    ``--online --dgdr``) is turned into the mode's subcommand; the mode's flags are checked
    against the other modes' before the mode parses them."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        args = list(args)
        if not args or args[0] not in self.commands:
            args = self._mode_args(args)
        if args and args[0] in self.commands:
            self._reject_foreign(args[0], args[1:])
        return super().parse_args(ctx, args)

    def _options(self, mode: str) -> list[TyperOption]:
        return [p for p in self.commands[mode].params if isinstance(p, TyperOption)]

    def _valued(self) -> set[str]:
        """Every mode's options that take a value (so a value is never read as a flag)."""
        return {
            o for mode in self.commands for p in self._options(mode) if not p.is_flag
            for o in p.opts
        }  # fmt: skip

    def _mode_args(self, args: list[str]) -> list[str]:
        """The flag form's ``args`` as ``[MODE, *args]`` without --offline/--online; UsageError
        when they name no mode or two; ``--help`` without a mode is the group's help."""
        flags = [f for _, f in _flags(args, self._valued())]
        try:
            mode = _pick_mode(set(flags))
        except UsageError:
            if "--help" in flags:
                return ["--help"]
            raise
        selectors = {i for i, f in _flags(args, self._valued()) if f in _SELECTORS}
        return [mode, *(a for i, a in enumerate(args) if i not in selectors)]

    def _reject_foreign(self, mode: str, args: Sequence[str]) -> None:
        """UsageError naming the flags in ``args`` that only other modes take, and their modes."""
        own = {o for p in self._options(mode) for o in [*p.opts, *p.secondary_opts]}
        owners: dict[str, list[str]] = {}
        for other in self.commands:
            for p in self._options(other):
                for o in [*p.opts, *p.secondary_opts]:
                    if o not in own:
                        owners.setdefault(o, []).append(other)
        given = list(dict.fromkeys(f for _, f in _flags(args, self._valued()) if f in owners))
        if not given:
            return
        order = list(owners)  # declaration order; a flag of fewer modes first
        given.sort(key=lambda f: (len(owners[f]), order.index(f)))
        groups: dict[tuple[str, ...], list[str]] = {}
        for flag in given:
            groups.setdefault(tuple(owners[flag]), []).append(flag)
        where = "; ".join(
            f"{', '.join(flags)}: {' or '.join(LABELS[m] for m in modes)}"
            for modes, flags in groups.items()
        )
        raise UsageError(f"{LABELS[mode]} does not take {', '.join(given)} ({where})")


def _flags(args: Sequence[str], valued: set[str]) -> Iterable[tuple[int, str]]:
    """(index, option name) of each option in ``args``, skipping the value of an option in
    ``valued``; ``--flag=value`` and ``-oVALUE`` name ``--flag`` and ``-o``; ``--`` ends them."""
    skip = False
    for i, token in enumerate(args):
        if skip:
            skip = False
            continue
        if token == "--":
            return
        if token.startswith("--"):
            name, eq, _ = token.partition("=")
            skip = name in valued and not eq
        elif token.startswith("-") and len(token) > 1 and not token[1].isdigit():
            name = token[:2]
            skip = name in valued and len(token) == 2
        else:
            continue
        yield i, name


def _pick_mode(flags: set[str]) -> str:
    """The mode the flag form names (the rules of the documented forms)."""
    if "--online" in flags:
        if "--offline" in flags:
            raise UsageError("--online and --offline cannot be combined")
        if ("--endpoint" in flags) == ("--dgdr" in flags):
            raise UsageError(
                "profile --online needs exactly one of --endpoint URL (measure that engine) "
                "or --dgdr FILE (measure each candidate TP in the cluster)"
            )
        return "cluster" if "--dgdr" in flags else "endpoint"
    if flags & {"--endpoint", "--result-configmap", "--result-label"}:
        raise UsageError("--endpoint, --result-configmap and --result-label need --online")
    if "--offline" not in flags:
        raise UsageError(
            "profile needs --offline (estimate) or --online --endpoint URL (measure an engine)"
        )
    return "offline"


app = typer.Typer(
    cls=ProfileGroup,
    help="Choose prefill and decode TP for an SLA (--offline), or measure an engine "
    "(--online), and write a Dynamo-compatible performance profile.\n\n"
    "\b\n"
    "  profile --offline ...                estimate (no GPU)\n"
    "  profile --online --endpoint URL ...  measure the engine behind URL\n"
    "  profile --online --dgdr FILE ...     measure each candidate TP in a cluster\n\n"
    "The modes are also commands: profile offline|endpoint|cluster ... is the same as the form "
    "above. Each mode lists its own options with --help.",
    add_completion=False,
    rich_markup_mode=None,
)
for _name, _function in (("offline", offline), ("endpoint", endpoint), ("cluster", cluster)):
    app.command(_name, cls=ModeCommand)(_function)
