"""Flags whose default is what the profile's ``profile.json`` records (``plan decide``,
``simulate``): the SLA (``--ttft``, ``--itl``, ``--isl``, ``--osl``) and the GPUs per engine.

Each flag defaults to None, so a value given on the command line is told apart from the default
(:func:`dynamo_plan.adapters.profile_files.profile_defaults`); a given value that differs from
the recorded one wins and a ``note:`` line on stderr says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dynamo_plan.cli.output import err_console
from dynamo_plan.errors import UsageError

if TYPE_CHECKING:  # imported when a command runs, not at CLI start-up
    from dynamo_plan.adapters.profile_files import ProfileDefaults, ProfileMeta

FROM_PROFILE = "default: from the profile.json"

ProfileTtftOption = Annotated[
    float | None,
    typer.Option("--ttft", metavar="MS", help=f"TTFT target (ms); {FROM_PROFILE}."),
]
ProfileItlOption = Annotated[
    float | None,
    typer.Option(
        "--itl", metavar="MS", help=f"Mean inter-token latency target (ms); {FROM_PROFILE}."
    ),
]
ProfileIslOption = Annotated[
    float | None,
    typer.Option("--isl", metavar="TOKENS", help=f"Mean input length (tokens); {FROM_PROFILE}."),
]
ProfileOslOption = Annotated[
    float | None,
    typer.Option("--osl", metavar="TOKENS", help=f"Mean output length (tokens); {FROM_PROFILE}."),
]
ProfilePrefillGpusOption = Annotated[
    int | None,
    typer.Option(
        "--prefill-engine-num-gpu",
        metavar="N",
        help=f"GPUs per prefill engine; {FROM_PROFILE}, else 1.",
        show_default=False,
    ),
]
ProfileDecodeGpusOption = Annotated[
    int | None,
    typer.Option(
        "--decode-engine-num-gpu",
        metavar="N",
        help=f"GPUs per decode engine; {FROM_PROFILE}, else 1.",
        show_default=False,
    ),
]


def note(message: str) -> None:
    """One plain ``note:`` line on stderr."""
    err_console.print(f"note: {message}", markup=False, highlight=False, soft_wrap=True)


def from_profile(meta: ProfileMeta, flags: Mapping[str, Any]) -> ProfileDefaults:
    """``flags`` (setting → the flag's value, None when not given) with the profile's recorded
    values where no flag was given; prints a note for each flag that overrides a different
    recorded value."""
    from dynamo_plan.adapters.profile_files import profile_defaults

    explicit = {k: "--" + k.replace("_", "-") for k, v in flags.items() if v is not None}
    resolved = profile_defaults(meta, flags, explicit)
    for line in resolved.notes:
        note(line)
    return resolved


def require(
    resolved: ProfileDefaults, names: Sequence[str], meta: ProfileMeta, profile: Path
) -> None:
    """UsageError naming the flags in ``names`` that have no value: neither given nor recorded in
    the profile's ``profile.json`` (or the profile has none)."""
    missing = [n for n in names if resolved.values.get(n) is None]
    if not missing:
        return
    flags = ", ".join("--" + n.replace("_", "-") for n in missing)
    why = (
        f"the profile {profile} has no profile.json to take them from"
        if meta.source is None
        else f"{meta.source} does not record them (sla.{{{','.join(missing)}}})"
    )
    raise UsageError(f"give {flags}: {why}")
