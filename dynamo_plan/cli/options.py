"""Typer options shared by several commands, and their small checks.

Each alias carries the flag name and help only (``Annotated`` holds no default): every command
gives its own default, e.g. ``max_gpu_budget: MaxGpuBudgetOption = 8``.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from dynamo_plan.core.releases import NEWEST_RELEASE, DynamoRelease
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
#: the ``--profile DIR`` option, for a command whose profile is optional: ``Annotated[Path | None,
#: PROFILE_DIR]`` (typer copies it per command)
PROFILE_DIR = typer.Option(
    "--profile", metavar="DIR", help="Performance-profile directory (Dynamo layout)."
)
ProfileDirOption = Annotated[Path, PROFILE_DIR]
#: ``--backend``, for the type each command parses it into (``str`` or ``Backend``)
BACKEND = typer.Option("--backend", metavar="BACKEND", help="vllm, sglang or trtllm.")
#: the SLA flags, for the type each command parses them into (``Annotated[int | None, ISL]``)
TTFT = typer.Option("--ttft", metavar="MS", help="TTFT target (ms).")
ITL = typer.Option("--itl", metavar="MS", help="Mean inter-token latency target (ms).")
ISL = typer.Option("--isl", metavar="TOKENS", help="Mean input length (tokens).")
OSL = typer.Option("--osl", metavar="TOKENS", help="Mean output length (tokens).")
TtftOption = Annotated[float, TTFT]
ItlOption = Annotated[float, ITL]
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


class ApiChoice(StrEnum):
    """--api: the OpenAI route requests go to (``load``, ``profile --online --endpoint``)."""

    chat = "chat"
    completions = "completions"


ApiOption = Annotated[
    ApiChoice,
    typer.Option("--api", metavar="API", help="chat (/v1/chat/completions) or completions."),
]
RequestTimeoutOption = Annotated[
    float, typer.Option("--timeout", metavar="S", help="Per-request timeout (s).")
]


class DtypeChoice(StrEnum):
    """--dtype: the weights' (and GEMMs') precision (``estimate``, ``profile --offline``)."""

    fp8 = "fp8"
    bf16 = "bf16"


class EstimatorChoice(StrEnum):
    """--estimator: how latencies are estimated (``estimate``, ``profile --offline``)."""

    roofline = "roofline"
    aiconfigurator = "aiconfigurator"
    auto = "auto"


DtypeOption = Annotated[
    DtypeChoice,
    typer.Option("--dtype", metavar="DTYPE", help="Weight/GEMM precision: fp8 or bf16."),
]
EstimatorOption = Annotated[
    EstimatorChoice,
    typer.Option(
        "--estimator",
        metavar="NAME",
        help="roofline (built in), aiconfigurator (optional package) or auto (aiconfigurator "
        "where it covers the model, system and backend, else roofline).",
    ),
]
ModelConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--model-config", metavar="FILE", help="An HF config.json to read the architecture from."
    ),
]
GpuSpecOption = Annotated[
    Path | None,
    typer.Option(
        "--gpu-spec",
        metavar="FILE",
        help="A YAML GPU spec (bf16_tflops, fp8_tflops, hbm_gbps, hbm_gib, nvlink_gbps) instead "
        "of --system.",
    ),
]

StartupOption = Annotated[
    float,
    typer.Option(
        "--startup-s", metavar="S", help="Seconds from ordering a replica to its serving."
    ),
]
ScaleDownPatienceOption = Annotated[
    int | None,
    typer.Option(
        "--scale-down-patience",
        metavar="N",
        help="Decisions a lower target must hold before the planner scales down (0: at once; "
        "default 3, or 1 with --sla-attainment).",
    ),
]
TtftQuantileOption = Annotated[
    float | None,
    typer.Option(
        "--ttft-quantile",
        metavar="Q",
        help="Size prefill so this TTFT quantile meets the target (M/D/c queueing); "
        "0: the mean TTFT.",
    ),
]


# What a rendered manifest targets (generate-dgd, dgdr run, profile --online --dgdr).
DynamoVersionOption = Annotated[
    DynamoRelease,
    typer.Option(
        "--dynamo-version",
        metavar="VERSION",
        help="Dynamo release to write for: 0.6, 0.9 or 1.5 (its apiVersion, DGD shape and worker "
        f"arguments). Default: {NEWEST_RELEASE.value}, the newest supported.",
    ),
]
PlannerImageOption = Annotated[
    str | None,
    typer.Option(
        "--planner-image",
        metavar="IMAGE",
        help="This project's image for the Planner and the profiling Jobs (default: the DGDR's "
        "planner key plannerImage, else dynamo-plan:<version>).",
    ),
]


class SizingChoice(StrEnum):
    """``--sizing``: this project's formula or Dynamo's (``plan run``, ``plan decide``,
    ``simulate``; the values of :data:`~dynamo_plan.live.settings_spec.SIZINGS`)."""

    project = "project"
    dynamo = "dynamo"


SizingOption = Annotated[
    SizingChoice,
    typer.Option(
        "--sizing",
        metavar="FORMULA",
        help="Sizing formula: project (queueing-aware prefill at --ttft-quantile) or dynamo "
        "(Dynamo's throughput-only formula on the mean TTFT, = --no-prefill-queueing "
        "--ttft-quantile 0).",
    ),
]
