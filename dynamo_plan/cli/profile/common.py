"""What the ``profile`` modes share: their common options, the DGDR check, the chosen-engines
table, and the command class that reports a bad choice (``--backend tgi``) as one usage line."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from dynamo_plan.cli.options import ISL, ITL, OSL, TTFT
from dynamo_plan.cli.output import simple_table
from dynamo_plan.errors import InputError, UsageError

DgdrOption = Annotated[
    Path | None,
    typer.Option(
        "--dgdr",
        metavar="FILE",
        help="DynamoGraphDeploymentRequest YAML giving model, backend, SLA.",
    ),
]
OutOption = Annotated[
    Path | None,
    typer.Option("--out", metavar="DIR", help="Profile directory to write (created or replaced)."),
]
ModelOption = Annotated[
    str | None, typer.Option("--model", metavar="MODEL", help="Model name or Hugging Face id.")
]
IslOption = Annotated[int | None, ISL]
OslOption = Annotated[int | None, OSL]
TtftOption = Annotated[float | None, TTFT]
ItlOption = Annotated[float | None, ITL]
PlotsOption = Annotated[
    bool, typer.Option("--plots/--no-plots", help="Write PNG plots beside the profile.")
]


class ModeCommand(TyperCommand):
    """A ``profile`` mode: a value outside a ``StrEnum`` option's choices is a UsageError (exit 2,
    one line: ``--dtype must be fp8 or bf16, got 'int4'``), not click's usage block. The shared
    ``-o/--output`` keeps click's message, as in every other command."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        given = list(args)  # the parser consumes ``args``
        try:
            return super().parse_args(ctx, args)
        except typer.BadParameter as e:
            param = e.param
            choices = getattr(getattr(param, "type_descriptor", None), "choices", None)
            if param is None or not choices or param.name == "output" or not param.opts:
                raise
            names = [str(getattr(c, "value", c)) for c in choices]
            allowed = (
                f"{names[0]} or {names[1]}" if len(names) == 2 else f"one of {', '.join(names)}"
            )
            value = given_value(given, [*param.opts, *param.secondary_opts])
            raise UsageError(f"{param.opts[0]} must be {allowed}, got {value!r}") from None


def given_value(args: Sequence[str], opts: Sequence[str]) -> str | None:
    """The value last given to the option ``opts`` in ``args`` (``--flag V`` or ``--flag=V``)."""
    value = None
    for i, token in enumerate(args):
        name, eq, attached = token.partition("=")
        if name in opts:
            value = attached if eq else (args[i + 1] if i + 1 < len(args) else None)
    return value


def check_dgdr(path: Path) -> None:
    """Full schema validation first (as ``dgdr validate``), so a bad DGDR is reported with its
    line and field path; InputError naming the first error and how many more there are."""
    from dynamo_plan.deploy.dgdr import validate_file
    from dynamo_plan.formats.schema_messages import error_summary

    report = validate_file(path)
    if report.valid:
        return
    first = report.errors[0]
    where = f"{path}:{first.line}" if first.line else str(path)
    field = f" {first.path}:" if first.path else ""
    hint = f"dynamo-plan dgdr validate {path}"
    raise InputError(
        error_summary(f"{where}:{field} {first.message}", len(report.errors), hint=hint)
    )


def pick_table(title: str, result: dict[str, Any]) -> Any:
    """The chosen prefill and decode engines (``result['prefill']`` / ``['decode']``), one row each."""
    pre, dec = result["prefill"], result["decode"]
    rows = [
        ["prefill", pre["tp"], "TTFT", pre["ttft_ms"], round(pre["thpt_per_gpu"]), None],
        ["decode", dec["tp"], "ITL", dec["itl_ms"], round(dec["thpt_per_gpu"]), dec["concurrency"]],
    ]
    return simple_table(title, ["role", "TP", "latency", "ms", "tokens/s/GPU", "concurrency"], rows)
