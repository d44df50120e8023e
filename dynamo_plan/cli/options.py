"""Typer options shared by several commands, and their small checks.

Each alias carries the flag name and help only (``Annotated`` holds no default): every command
gives its own default, e.g. ``max_gpu_budget: MaxGpuBudgetOption = 8``.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from dynamo_plan.errors import InputError


class FormatChoice(StrEnum):
    """Trace formats accepted by --format."""

    mooncake = "mooncake"
    azure = "azure"
    rate = "rate"


TraceFormatOption = Annotated[
    FormatChoice | None,
    typer.Option(
        "--format",
        metavar="FORMAT",
        help="Trace format: mooncake, azure or rate; default: detected from the first line.",
    ),
]
SkipBadLinesOption = Annotated[
    bool,
    typer.Option("--skip-bad-lines", help="Skip malformed lines (counted) instead of failing."),
]
ProfileDirOption = Annotated[
    Path,
    typer.Option("--profile", metavar="DIR", help="Performance-profile directory (Dynamo layout)."),
]
TtftOption = Annotated[float, typer.Option("--ttft", metavar="MS", help="TTFT target (ms).")]
ItlOption = Annotated[
    float, typer.Option("--itl", metavar="MS", help="Mean inter-token latency target (ms).")
]
PrefillGpusOption = Annotated[
    int, typer.Option("--prefill-engine-num-gpu", metavar="N", help="GPUs per prefill engine.")
]
DecodeGpusOption = Annotated[
    int, typer.Option("--decode-engine-num-gpu", metavar="N", help="GPUs per decode engine.")
]
MinEndpointOption = Annotated[
    int, typer.Option("--min-endpoint", metavar="N", help="Fewest replicas per role.")
]
MaxGpuBudgetOption = Annotated[
    int, typer.Option("--max-gpu-budget", metavar="N", help="Most GPUs in total; -1 for no budget.")
]


def predictor_params(name: str, interval_s: float) -> dict[str, Any] | None:
    """Parameters the CLI gives predictor ``name``: prophet's ``interval_s`` (it models calendar
    seasonality, so the spacing of the points matters); None for the others."""
    return {"interval_s": interval_s} if name == "prophet" else None


def gpu_budget(max_gpu_budget: int) -> int | None:
    """``--max-gpu-budget`` as a limit: None for -1 (no budget); InputError for 0 or < -1."""
    if max_gpu_budget == 0 or max_gpu_budget < -1:
        raise InputError(f"--max-gpu-budget must be >= 1 or -1 (no budget), got {max_gpu_budget}")
    return None if max_gpu_budget == -1 else max_gpu_budget


# Cluster access, shared by apply/delete, dgdr and doctor.
NamespaceOption = Annotated[
    str | None,
    typer.Option(
        "--namespace",
        "-n",
        metavar="NAMESPACE",
        help="Namespace for objects without one (default: the context's).",
    ),
]
ManifestFileOption = Annotated[
    Path | None,
    typer.Option(
        "--file",
        "-f",
        metavar="FILE",
        help="Write this file (atomically; a symlink's target), not stdout; - is stdout.",
    ),
]
ContextOption = Annotated[
    str | None,
    typer.Option(
        "--context", metavar="NAME", help="kubeconfig context (default: the current one)."
    ),
]
KubeconfigOption = Annotated[
    Path | None,
    typer.Option(
        "--kubeconfig",
        metavar="FILE",
        help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config).",
    ),
]
