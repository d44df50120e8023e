"""``dynamo-plan profile --online --endpoint URL``: measure the engine behind an
OpenAI-compatible endpoint and write the profile. Parse the flags, run
:func:`dynamo_plan.profiler.online.run_online` (optionally publishing the result as a
ConfigMap, as the profiling Job does), render the measured points."""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from dynamo_plan.cli.options import (
    ApiChoice,
    ApiOption,
    ContextOption,
    KubeconfigOption,
    NamespaceOption,
    RequestTimeoutOption,
)
from dynamo_plan.cli.output import OutputFormat, OutputOption, emit, simple_table, warn
from dynamo_plan.cli.profile.common import (
    IslOption,
    ItlOption,
    ModelOption,
    OslOption,
    OutOption,
    PlotsOption,
    TtftOption,
)
from dynamo_plan.cli.progress_views import task_progress
from dynamo_plan.errors import InputError, UsageError


class Role(StrEnum):
    """--role: which phase of the engine is measured."""

    prefill = "prefill"
    decode = "decode"
    both = "both"


def endpoint(
    endpoint: Annotated[
        str | None,
        typer.Option("--endpoint", metavar="URL", help="Endpoint base URL, e.g. http://host:8000."),
    ] = None,
    tp: Annotated[
        int, typer.Option("--tp", metavar="N", help="GPUs (TP) of the engine behind the endpoint.")
    ] = 1,
    role: Annotated[
        Role, typer.Option("--role", metavar="ROLE", help="Measure prefill, decode or both.")
    ] = Role.both,
    max_kv_tokens: Annotated[
        int | None,
        typer.Option(
            "--max-kv-tokens",
            metavar="TOKENS",
            help="The engine's KV-cache capacity (tokens); default: as advertised.",
        ),
    ] = None,
    max_isl: Annotated[
        int | None,
        typer.Option(
            "--max-isl", metavar="TOKENS", help="Largest ISL measured (default max(ISL, 8192))."
        ),
    ] = None,
    prefill_points: Annotated[
        int, typer.Option("--prefill-points", metavar="N", help="ISLs in the prefill grid.")
    ] = 8,
    prefill_requests: Annotated[
        int, typer.Option("--prefill-requests", metavar="N", help="Requests per prefill ISL.")
    ] = 3,
    decode_rows: Annotated[
        int, typer.Option("--decode-rows", metavar="N", help="Context rows of the decode grid.")
    ] = 3,
    decode_points: Annotated[
        int, typer.Option("--decode-points", metavar="N", help="Concurrencies per context row.")
    ] = 4,
    decode_rounds: Annotated[
        int,
        typer.Option(
            "--decode-rounds", metavar="N", help="Requests per decode point = rounds × concurrency."
        ),
    ] = 2,
    max_concurrency: Annotated[
        int,
        typer.Option("--max-concurrency", metavar="N", help="Most concurrent decode requests."),
    ] = 256,
    api: ApiOption = ApiChoice.chat,
    timeout: RequestTimeoutOption = 600.0,
    out: OutOption = None,
    model: ModelOption = None,
    isl: IslOption = None,
    osl: OslOption = None,
    ttft: TtftOption = None,
    itl: ItlOption = None,
    result_configmap: Annotated[
        str | None,
        typer.Option(
            "--result-configmap",
            metavar="NAME",
            help="Also publish the result JSON files as this ConfigMap.",
        ),
    ] = None,
    result_label: Annotated[
        list[str] | None,
        typer.Option(
            "--result-label",
            metavar="KEY=VALUE",
            help="A KEY=VALUE label of the --result-configmap (repeatable).",
        ),
    ] = None,
    namespace: NamespaceOption = None,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    plots: PlotsOption = True,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Measure the engine behind an OpenAI-compatible endpoint (prefill TTFT per ISL, decode
    ITL per context and concurrency) and write a Dynamo-compatible performance profile.

    Writes OUT/selected_{prefill,decode}_interpolation/raw_data.npz, their JSON form,
    profile.json and PNG plots; with --result-configmap, also that ConfigMap (the profiling Job
    of profile --online --dgdr runs this). Exit 3 when the endpoint fails.
    """
    if endpoint is None or out is None or isl is None or osl is None:
        raise UsageError("profile --online needs --endpoint URL, --out DIR, --isl and --osl")
    from dynamo_plan.profiler.online import OnlineRequest

    req = OnlineRequest(
        endpoint=endpoint,
        out=out,
        isl=isl,
        osl=osl,
        model=model,
        tp=tp,
        role=role.value,
        max_kv_tokens=max_kv_tokens,
        max_isl=max_isl,
        ttft_ms=ttft,
        itl_ms=itl,
        prefill_points=prefill_points,
        prefill_requests=prefill_requests,
        decode_rows=decode_rows,
        decode_points=decode_points,
        decode_rounds=decode_rounds,
        max_concurrency=max_concurrency,
        api=api.value,
        timeout_s=timeout,
        plots=plots,
    )
    labels = _labels(result_label or [])
    _run(req, result_configmap, labels, namespace, kubeconfig, context, output)


def _labels(pairs: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` texts → labels (InputError naming the bad one)."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise InputError(f"--result-label must be KEY=VALUE, got {pair!r}")
        out[key] = value
    return out


def _run(
    req: Any,
    result_configmap: str | None,
    result_labels: dict[str, str],
    namespace: str | None,
    kubeconfig: Path | None,
    context: str | None,
    output: OutputFormat,
) -> None:
    """Measure for ``req`` (an OnlineRequest) with a progress bar, publish, render."""
    from dynamo_plan.profiler.online import plan_size, resolve, run_online

    req.check()
    resolved = resolve(req)
    total = plan_size(req, resolved[1])
    with task_progress(f"profiling {resolved[0]} at {req.endpoint}", total) as advance:
        outcome = run_online(req, progress=advance, resolved=resolved)
    for line in outcome.warnings:  # target load not reached (also in profile.json)
        warn(line)
    if result_configmap is not None:
        from dynamo_plan.profiler.online_cluster import publish_result_configmap

        publish_result_configmap(
            outcome.out, result_configmap, namespace, kubeconfig, context, labels=result_labels
        )
    result = _summary(outcome, result_configmap)
    emit(result, output, table=lambda: _table(result))


def _summary(outcome: Any, configmap: str | None) -> dict[str, Any]:
    req = outcome.request
    return {
        "model": outcome.model,
        "endpoint": req.endpoint,
        "tp": req.tp,
        "role": req.role,
        "max_kv_tokens": outcome.max_kv_tokens,
        "prefill": [dataclasses.asdict(p) for p in outcome.prefill],
        "decode": [dataclasses.asdict(p) for p in outcome.decode],
        "out": str(outcome.out),
        "plots": [str(p) for p in outcome.plots],
        "result_configmap": configmap,
        "warnings": list(outcome.warnings),
        "elapsed_s": round(outcome.elapsed_s, 3),
    }


def _table(result: dict[str, Any]) -> Any:
    from rich.console import Group

    parts: list[Any] = []
    title = f"{result['model']} at {result['endpoint']} (TP{result['tp']}) → {result['out']}"
    if result["prefill"]:
        rows = [
            [p["isl"], p["ttft_ms"], round(p["thpt_per_gpu"]), p["requests"], p["errors"]]
            for p in result["prefill"]
        ]
        head = ["ISL", "TTFT ms", "tokens/s/GPU", "ok", "errors"]
        parts.append(simple_table(f"prefill: {title}", head, rows))
    if result["decode"]:
        rows = [
            [
                p["context"], p["clients"], p["concurrency"], p["kv_usage"], p["itl_ms"],
                round(p["thpt_per_gpu"]), p["errors"],
            ]
            for p in result["decode"]
        ]  # fmt: skip
        head = ["context", "clients", "concurrency", "kv usage", "ITL ms", "tokens/s/GPU", "errors"]
        title = f"decode (max_kv_tokens {result['max_kv_tokens']}): {title}"
        parts.append(simple_table(title, head, rows))
    return Group(*parts)
