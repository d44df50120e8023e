"""``dynamo-plan profile --online --dgdr FILE``: measure every candidate TP of a DGDR in the
cluster (a temporary DGD and a profiling Job per measurement) and write the profile. Parse the
flags, run :func:`dynamo_plan.profiler.online_cluster.profile_online_cluster` with the live
progress view, render the chosen engines."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from dynamo_plan.cli.options import (
    ContextOption,
    KubeconfigOption,
    NamespaceOption,
    PlannerImageOption,
)
from dynamo_plan.cli.output import OutputFormat, OutputOption, emit, err_console
from dynamo_plan.cli.profile.common import (
    DgdrOption,
    OutOption,
    PlotsOption,
    check_dgdr,
    pick_table,
)
from dynamo_plan.errors import InputError, UsageError


def cluster(
    dgdr: DgdrOption = None,
    out: OutOption = None,
    poll: Annotated[
        float, typer.Option("--poll", metavar="S", help="Seconds between cluster status checks.")
    ] = 5.0,
    ready_timeout: Annotated[
        float,
        typer.Option(
            "--ready-timeout", metavar="S", help="Seconds to wait for each temporary DGD."
        ),
    ] = 1800.0,
    job_timeout: Annotated[
        float, typer.Option("--job-timeout", metavar="S", help="Seconds to wait for each Job.")
    ] = 3600.0,
    namespace: NamespaceOption = None,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    plots: PlotsOption = True,
    planner_image: PlannerImageOption = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Measure each candidate TP of a DGDR in the cluster (temporary DGDs + profiling Jobs),
    choose prefill and decode TP for its SLA, and write a Dynamo-compatible performance profile.

    Exit 4 when no candidate meets the SLA; exit 3 when the cluster fails. Ctrl-C deletes the
    run's temporary DGDs, Jobs and ConfigMaps first, then exits 130 with one line (naming what
    could not be deleted, if anything).
    """
    if dgdr is None:
        raise UsageError("profile --online --dgdr needs --dgdr FILE")
    if out is None:
        raise UsageError("profile --online --dgdr needs --out DIR")
    if poll <= 0 or ready_timeout <= 0 or job_timeout <= 0:
        raise UsageError("--poll, --ready-timeout and --job-timeout must be > 0 seconds")
    from rich.markup import escape

    from dynamo_plan.adapters.kubernetes import KubeClient
    from dynamo_plan.cli.progress_views import profiling_view
    from dynamo_plan.deploy.render import load_dgdr
    from dynamo_plan.profiler.online_cluster import profile_online_cluster

    check_dgdr(dgdr)
    own = load_dgdr(dgdr).namespace
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
                dgdr, client, ns, out, progress=show, poll_s=poll,
                ready_timeout_s=ready_timeout, job_timeout_s=job_timeout, plots=plots,
                planner_image=planner_image,
            )  # fmt: skip
    except KeyboardInterrupt as e:  # the library deleted what it created, then re-raised
        notes = getattr(e, "__notes__", None) or ["the run's temporary objects were deleted"]
        err_console.print(f"[red]interrupted:[/] {escape(notes[0])}", soft_wrap=True)
        raise typer.Exit(getattr(e, "exit_code", 130)) from None  # SIGTERM: 143 (cli/app.py)
    result = outcome.as_dict()
    result["elapsed_s"] = round(time.perf_counter() - started, 3)
    emit(result, output, table=lambda: _table(result))


def _table(result: dict[str, Any]) -> Any:
    tps = ", ".join(str(tp) for tp in result["candidates"])
    title = (
        f"measured TP {tps} on {result['system']} in {result['namespace']} "
        f"(run {result['runId']}) → {result['out']} in {result['elapsed_s']} s"
    )
    return pick_table(title, result)
