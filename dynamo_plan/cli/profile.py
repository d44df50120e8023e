"""``dynamo-plan profile``: ``--offline`` sizes prefill/decode engines for an SLA with the
estimator; ``--online --endpoint URL`` measures the engine behind an endpoint; ``--online --dgdr
FILE`` measures every candidate TP in the cluster (temporary DGDs + profiling Jobs). All write a
Dynamo-layout performance profile."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from dynamo_plan.cli.options import ContextOption, KubeconfigOption, NamespaceOption
from dynamo_plan.cli.output import (
    OutputFormat,
    OutputOption,
    emit,
    err_console,
    simple_table,
    warn,
)
from dynamo_plan.cli.progress_views import task_progress
from dynamo_plan.errors import InputError, UsageError


def profile(
    ctx: typer.Context,
    offline: Annotated[
        bool,
        typer.Option("--offline", help="Estimate the profile with the offline estimator."),
    ] = False,
    online: Annotated[
        bool,
        typer.Option(
            "--online",
            help="Measure: the engine behind --endpoint, or each candidate TP of --dgdr in the "
            "cluster.",
        ),
    ] = False,
    endpoint: Annotated[
        str | None,
        typer.Option(
            "--endpoint", metavar="URL", help="--online: endpoint base URL, e.g. http://host:8000."
        ),
    ] = None,
    tp: Annotated[
        int,
        typer.Option(
            "--tp", metavar="N", help="--online: GPUs (TP) of the engine behind the endpoint."
        ),
    ] = 1,
    role: Annotated[
        str,
        typer.Option("--role", metavar="ROLE", help="--online: measure prefill, decode or both."),
    ] = "both",
    max_kv_tokens: Annotated[
        int | None,
        typer.Option(
            "--max-kv-tokens",
            metavar="TOKENS",
            help="--online: the engine's KV-cache capacity (tokens); default: as advertised.",
        ),
    ] = None,
    max_isl: Annotated[
        int | None,
        typer.Option(
            "--max-isl",
            metavar="TOKENS",
            help="--online: largest ISL measured (default max(ISL, 8192)).",
        ),
    ] = None,
    prefill_points: Annotated[
        int,
        typer.Option("--prefill-points", metavar="N", help="--online: ISLs in the prefill grid."),
    ] = 8,
    prefill_requests: Annotated[
        int,
        typer.Option("--prefill-requests", metavar="N", help="--online: requests per prefill ISL."),
    ] = 3,
    decode_rows: Annotated[
        int,
        typer.Option(
            "--decode-rows", metavar="N", help="--online: context rows of the decode grid."
        ),
    ] = 3,
    decode_points: Annotated[
        int,
        typer.Option(
            "--decode-points", metavar="N", help="--online: concurrencies per context row."
        ),
    ] = 4,
    decode_rounds: Annotated[
        int,
        typer.Option(
            "--decode-rounds",
            metavar="N",
            help="--online: requests per decode point = rounds × concurrency.",
        ),
    ] = 2,
    max_concurrency: Annotated[
        int,
        typer.Option(
            "--max-concurrency", metavar="N", help="--online: most concurrent decode requests."
        ),
    ] = 256,
    api: Annotated[
        str, typer.Option("--api", metavar="API", help="--online: chat or completions.")
    ] = "chat",
    timeout: Annotated[
        float, typer.Option("--timeout", metavar="S", help="--online: per-request timeout (s).")
    ] = 600.0,
    result_configmap: Annotated[
        str | None,
        typer.Option(
            "--result-configmap",
            metavar="NAME",
            help="--online: also publish the result JSON files as this ConfigMap.",
        ),
    ] = None,
    result_label: Annotated[
        list[str] | None,
        typer.Option(
            "--result-label",
            metavar="KEY=VALUE",
            help="--online --result-configmap: a KEY=VALUE label of that ConfigMap (repeatable).",
        ),
    ] = None,
    poll: Annotated[
        float,
        typer.Option(
            "--poll", metavar="S", help="--online --dgdr: seconds between cluster status checks."
        ),
    ] = 5.0,
    ready_timeout: Annotated[
        float,
        typer.Option(
            "--ready-timeout",
            metavar="S",
            help="--online --dgdr: seconds to wait for each temporary DGD.",
        ),
    ] = 1800.0,
    job_timeout: Annotated[
        float,
        typer.Option(
            "--job-timeout", metavar="S", help="--online --dgdr: seconds to wait for each Job."
        ),
    ] = 3600.0,
    namespace: NamespaceOption = None,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", metavar="DIR", help="Profile directory to write (created or replaced)."
        ),
    ] = None,
    dgdr: Annotated[
        Path | None,
        typer.Option(
            "--dgdr",
            metavar="FILE",
            help="DynamoGraphDeploymentRequest YAML giving model, backend, SLA.",
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", metavar="MODEL", help="Model name or Hugging Face id.")
    ] = None,
    model_config: Annotated[
        Path | None,
        typer.Option(
            "--model-config", metavar="FILE", help="A Hugging Face config.json for the model."
        ),
    ] = None,
    system: Annotated[
        str | None, typer.Option("--system", metavar="SYSTEM", help="GPU system, e.g. h200_sxm.")
    ] = None,
    gpu_spec: Annotated[
        Path | None,
        typer.Option(
            "--gpu-spec", metavar="FILE", help="A GPU spec YAML file instead of --system."
        ),
    ] = None,
    backend: Annotated[
        str | None, typer.Option("--backend", metavar="BACKEND", help="vllm, sglang or trtllm.")
    ] = None,
    isl: Annotated[
        int | None, typer.Option("--isl", metavar="TOKENS", help="Mean input length (tokens).")
    ] = None,
    osl: Annotated[
        int | None, typer.Option("--osl", metavar="TOKENS", help="Mean output length (tokens).")
    ] = None,
    ttft: Annotated[
        float | None, typer.Option("--ttft", metavar="MS", help="TTFT target (ms).")
    ] = None,
    itl: Annotated[
        float | None, typer.Option("--itl", metavar="MS", help="ITL target (ms).")
    ] = None,
    dtype: Annotated[
        str, typer.Option("--dtype", metavar="DTYPE", help="Weight dtype: fp8 or bf16.")
    ] = "fp8",
    max_gpus_per_engine: Annotated[
        int,
        typer.Option("--max-gpus-per-engine", metavar="N", help="Largest TP tried (power of two)."),
    ] = 8,
    estimator: Annotated[
        str, typer.Option("--estimator", metavar="NAME", help="roofline or aiconfigurator.")
    ] = "roofline",
    plots: Annotated[
        bool, typer.Option("--plots/--no-plots", help="Write PNG plots beside the profile.")
    ] = True,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Choose prefill and decode TP for an SLA (--offline), or measure an engine (--online), and
    write a Dynamo-compatible performance profile.

    Writes OUT/selected_{prefill,decode}_interpolation/raw_data.npz, their JSON form, profile.json
    and PNG plots. Exit 4 when no TP up to --max-gpus-per-engine meets the SLA (--offline, --online
    --dgdr); exit 3 when the endpoint or the cluster fails (--online). Ctrl-C during --online
    --dgdr deletes the run's temporary DGDs, Jobs and ConfigMaps first, then exits 130 with one
    line (naming what could not be deleted, if anything).
    """
    if online:
        if offline:
            raise UsageError("--online and --offline cannot be combined")
        if (endpoint is None) == (dgdr is None):
            raise UsageError(
                "profile --online needs exactly one of --endpoint URL (measure that engine) "
                "or --dgdr FILE (measure each candidate TP in the cluster)"
            )
        if dgdr is not None:
            _reject_given(ctx, _ENDPOINT_OR_ESTIMATE_FLAGS, "profile --online --dgdr")
            if out is None:
                raise UsageError("profile --online --dgdr needs --out DIR")
            if poll <= 0 or ready_timeout <= 0 or job_timeout <= 0:
                raise UsageError("--poll, --ready-timeout and --job-timeout must be > 0 seconds")
            _online_cluster(
                dgdr, out, namespace, kubeconfig, context, poll, ready_timeout, job_timeout,
                plots, output,
            )  # fmt: skip
            return
        _reject_given(ctx, _CLUSTER_RUN_FLAGS, "profile --online --endpoint")
        if endpoint is None or out is None or isl is None or osl is None:
            raise UsageError("profile --online needs --endpoint URL, --out DIR, --isl and --osl")
        offline_only = {"--model-config": model_config, "--system": system}
        given = [k for k, v in offline_only.items() if v is not None]
        if given:
            raise UsageError(f"profile --online --endpoint does not take {', '.join(given)}")
        if role not in ("prefill", "decode", "both"):
            raise UsageError(f"--role must be prefill, decode or both, got {role!r}")
        if api not in ("chat", "completions"):
            raise UsageError(f"--api must be chat or completions, got {api!r}")
        from dynamo_plan.profiler.online import OnlineRequest

        req = OnlineRequest(
            endpoint=endpoint,
            out=out,
            isl=isl,
            osl=osl,
            model=model,
            tp=tp,
            role=cast(Any, role),
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
            api=cast(Any, api),
            timeout_s=timeout,
            plots=plots,
        )
        labels = _labels(result_label or [])
        _online(req, result_configmap, labels, namespace, kubeconfig, context, output)
        return
    if endpoint is not None or result_configmap is not None or result_label:
        raise UsageError("--endpoint, --result-configmap and --result-label need --online")
    _reject_given(ctx, _CLUSTER_RUN_FLAGS, "profile --offline")
    started = time.perf_counter()
    from dynamo_plan.profiler.offline import (
        Dtype,
        EstimatorKind,
        OfflineRequest,
        run_offline,
        summary,
    )

    if not offline:
        raise UsageError(
            "profile needs --offline (estimate) or --online --endpoint URL (measure an engine)"
        )
    if out is None:
        raise UsageError("profile --offline needs --out DIR")
    if dtype not in ("fp8", "bf16"):
        raise UsageError(f"--dtype must be fp8 or bf16, got {dtype!r}")
    if estimator not in ("roofline", "aiconfigurator"):
        raise UsageError(f"--estimator must be roofline or aiconfigurator, got {estimator!r}")
    request = OfflineRequest(
        **_intent(dgdr, model, model_config, system, gpu_spec, backend, isl, osl, ttft, itl),
        out=out,
        dtype=cast(Dtype, dtype),
        max_gpus_per_engine=max_gpus_per_engine,
        estimator=cast(EstimatorKind, estimator),
        plots=plots,
    )
    result = summary(run_offline(request))
    result["elapsed_s"] = round(time.perf_counter() - started, 3)
    emit(result, output, table=lambda: _table(result))


# flags (parameter name → flag) that a mode does not take; checked only when given explicitly
_ENDPOINT_OR_ESTIMATE_FLAGS = {
    "tp": "--tp", "role": "--role", "max_kv_tokens": "--max-kv-tokens", "max_isl": "--max-isl",
    "prefill_points": "--prefill-points", "prefill_requests": "--prefill-requests",
    "decode_rows": "--decode-rows", "decode_points": "--decode-points",
    "decode_rounds": "--decode-rounds", "max_concurrency": "--max-concurrency", "api": "--api",
    "timeout": "--timeout", "result_configmap": "--result-configmap", "model": "--model",
    "model_config": "--model-config", "system": "--system", "gpu_spec": "--gpu-spec",
    "backend": "--backend", "isl": "--isl", "osl": "--osl", "ttft": "--ttft", "itl": "--itl",
    "dtype": "--dtype", "max_gpus_per_engine": "--max-gpus-per-engine", "estimator": "--estimator",
}  # fmt: skip
_CLUSTER_RUN_FLAGS = {"poll": "--poll", "ready_timeout": "--ready-timeout",
                      "job_timeout": "--job-timeout"}  # fmt: skip


def _reject_given(ctx: typer.Context, flags: dict[str, str], mode: str) -> None:
    """UsageError naming the ``flags`` given on the command line (or by env) that ``mode`` ignores."""
    given = []
    for param, flag in flags.items():
        source = ctx.get_parameter_source(param)
        if source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT"):
            given.append(flag)
    if given:
        raise UsageError(f"{mode} does not take {', '.join(given)}")


def _intent(
    dgdr: Path | None,
    model: str | None,
    model_config: Path | None,
    system: str | None,
    gpu_spec: Path | None,
    backend: str | None,
    isl: int | None,
    osl: int | None,
    ttft: float | None,
    itl: float | None,
) -> dict[str, Any]:
    """Merge the DGDR (if any) and the flags into OfflineRequest fields; UsageError on conflicts."""
    from dynamo_plan.profiler.dgdr import BACKENDS, read_dgdr
    from dynamo_plan.profiler.sweep import SweepSLA

    flags = {
        "--model": model,
        "--model-config": model_config,
        "--backend": backend,
        "--isl": isl,
        "--osl": osl,
        "--ttft": ttft,
        "--itl": itl,
    }
    if dgdr is not None:
        given = [k for k, v in flags.items() if v is not None]
        if given:
            raise UsageError(
                f"--dgdr cannot be combined with {', '.join(given)} (the DGDR gives them)"
            )
        _check_dgdr(dgdr)
        intent = read_dgdr(dgdr)
        sys_name = system or intent.system
        if sys_name is None and gpu_spec is None:
            raise UsageError(
                f"{dgdr}: no 'spec.profilingConfig.config.sweep.aicSystem'; give --system or --gpu-spec"
            )
        return {
            "model": intent.estimator_model,
            "system": sys_name,
            "gpu_spec": gpu_spec,
            "backend": intent.backend,
            "sla": SweepSLA(intent.isl, intent.osl, intent.ttft_ms, intent.itl_ms),
        }
    missing = [k for k in ("--backend", "--isl", "--osl", "--ttft", "--itl") if flags[k] is None]
    if model is None and model_config is None:
        missing.insert(0, "--model (or --model-config)")
    if system is None and gpu_spec is None:
        missing.append("--system (or --gpu-spec)")
    if missing:
        raise UsageError(f"profile --offline needs --dgdr FILE or {', '.join(missing)}")
    assert backend is not None and isl is not None and osl is not None
    assert ttft is not None and itl is not None
    if backend not in BACKENDS:
        raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    return {
        "model": model,
        "model_config": model_config,
        "system": system,
        "gpu_spec": gpu_spec,
        "backend": backend,
        "sla": SweepSLA(isl, osl, ttft, itl),
    }


def _table(result: dict[str, Any]) -> Any:
    title = (
        f"{result['model']} on {result['system']} ({result['estimator']}) → {result['out']} "
        f"in {result['elapsed_s']} s"
    )
    return _pick_table(title, result)


def _pick_table(title: str, result: dict[str, Any]) -> Any:
    """The chosen prefill and decode engines (``result['prefill']`` / ``['decode']``), one row each."""
    pre, dec = result["prefill"], result["decode"]
    rows = [
        ["prefill", pre["tp"], "TTFT", pre["ttft_ms"], round(pre["thpt_per_gpu"]), None],
        ["decode", dec["tp"], "ITL", dec["itl_ms"], round(dec["thpt_per_gpu"]), dec["concurrency"]],
    ]
    return simple_table(title, ["role", "TP", "latency", "ms", "tokens/s/GPU", "concurrency"], rows)


def _check_dgdr(path: Path) -> None:
    """Full schema validation first (as ``dgdr validate``), so a bad DGDR is reported with its
    line and field path; InputError naming the first error and how many more there are."""
    from dynamo_plan.deploy.dgdr import validate_file

    report = validate_file(path)
    if report.valid:
        return
    first = report.errors[0]
    where = f"{path}:{first.line}" if first.line else str(path)
    field = f" {first.path}:" if first.path else ""
    more = len(report.errors) - 1
    tail = f" (and {more} more: dynamo-plan dgdr validate {path})" if more else ""
    raise InputError(f"{where}:{field} {first.message}{tail}")


def _labels(pairs: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` texts → labels (InputError naming the bad one)."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise InputError(f"--result-label must be KEY=VALUE, got {pair!r}")
        out[key] = value
    return out


def _online(
    req: Any,
    result_configmap: str | None,
    result_labels: dict[str, str],
    namespace: str | None,
    kubeconfig: Path | None,
    context: str | None,
    output: OutputFormat,
) -> None:
    """Run ``profile --online`` for ``req`` (an OnlineRequest), publish, render."""
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
    result = _online_summary(outcome, result_configmap)
    emit(result, output, table=lambda: _online_table(result))


def _online_summary(outcome: Any, configmap: str | None) -> dict[str, Any]:
    import dataclasses

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


def _online_table(result: dict[str, Any]) -> Any:
    from rich.console import Group

    parts: list[Any] = []
    title = f"{result['model']} at {result['endpoint']} (TP{result['tp']}) → {result['out']}"
    if result["prefill"]:
        rows = [
            [p["isl"], p["ttft_ms"], round(p["thpt_per_gpu"]), p["requests"], p["errors"]]
            for p in result["prefill"]
        ]
        parts.append(
            simple_table(
                f"prefill: {title}", ["ISL", "TTFT ms", "tokens/s/GPU", "ok", "errors"], rows
            )
        )
    if result["decode"]:
        rows = [
            [
                p["context"],
                p["clients"],
                p["concurrency"],
                p["kv_usage"],
                p["itl_ms"],
                round(p["thpt_per_gpu"]),
                p["errors"],
            ]
            for p in result["decode"]
        ]
        head = ["context", "clients", "concurrency", "kv usage", "ITL ms", "tokens/s/GPU", "errors"]
        parts.append(
            simple_table(f"decode (max_kv_tokens {result['max_kv_tokens']}): {title}", head, rows)
        )
    return Group(*parts)


def _online_cluster(
    dgdr: Path,
    out: Path,
    namespace: str | None,
    kubeconfig: Path | None,
    context: str | None,
    poll_s: float,
    ready_timeout_s: float,
    job_timeout_s: float,
    plots: bool,
    output: OutputFormat,
) -> None:
    """Run ``profile --online --dgdr``: measure each candidate TP in the cluster, render."""
    from rich.markup import escape

    from dynamo_plan.adapters.kubernetes import KubeClient
    from dynamo_plan.cli.progress_views import profiling_view
    from dynamo_plan.deploy.render import load_dgdr
    from dynamo_plan.profiler.online_cluster import profile_online_cluster

    _check_dgdr(dgdr)
    own = (load_dgdr(dgdr).get("metadata") or {}).get("namespace")
    if own and namespace and own != namespace:
        raise InputError(
            f"{dgdr}: the DGDR is in namespace '{own}' but --namespace is '{namespace}'"
        )
    started = time.perf_counter()
    client = KubeClient(kubeconfig=kubeconfig, context=context).connect()
    ns = str(namespace or own or client.default_namespace)
    try:
        with profiling_view() as show:
            outcome = profile_online_cluster(
                dgdr, client, ns, out, progress=show, poll_s=poll_s,
                ready_timeout_s=ready_timeout_s, job_timeout_s=job_timeout_s, plots=plots,
            )  # fmt: skip
    except KeyboardInterrupt as e:  # the library deleted what it created, then re-raised
        notes = getattr(e, "__notes__", None) or ["the run's temporary objects were deleted"]
        err_console.print(f"[red]interrupted:[/] {escape(notes[0])}", soft_wrap=True)
        raise typer.Exit(getattr(e, "exit_code", 130)) from None  # SIGTERM: 143 (cli/app.py)
    result = outcome.as_dict()
    result["elapsed_s"] = round(time.perf_counter() - started, 3)
    emit(result, output, table=lambda: _cluster_table(result))


def _cluster_table(result: dict[str, Any]) -> Any:
    tps = ", ".join(str(tp) for tp in result["candidates"])
    title = (
        f"measured TP {tps} on {result['system']} in {result['namespace']} "
        f"(run {result['runId']}) → {result['out']} in {result['elapsed_s']} s"
    )
    return _pick_table(title, result)
