"""``dynamo-plan demo``: the whole idea in one command, offline (no cluster, no GPU, no network).

1. Estimate a performance profile for Llama-3.1-8B (fp8) on one H200 with vLLM (the roofline
   estimator of ``profile --offline``, one GPU per engine), for the SLA below.
2. Replay the bundled Azure conversation excerpt (``sample_traces/azure2023_conv_10min.csv``,
   10 minutes, 2,867 requests) compressed 10× (``--rate-scale 10``: ~48 req/s) through
   ``simulate --compare``: optimal, oracle-forecast, planner, dynamo, reactive and static peak
   sizing.
   Because time is compressed 10×, the planner interval and the replica start-up time are
   scaled with it: a 3 s interval and a 6 s start-up (30 s and 60 s of the trace's own time).
3. Print the comparison table; write the profile, its plots and the simulation plot to ``--out``.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Annotated, Any, Final

import typer

from dynamo_plan.cli.output import OutputFormat, OutputOption, emit, err_console

DEMO_MODEL = "llama-3.1-8b"
DEMO_SYSTEM = "h200_sxm"
DEMO_BACKEND: Final = "vllm"
DEMO_TRACE = "azure2023_conv_10min.csv"
DEMO_TTFT_MS = 300.0
DEMO_ITL_MS = 20.0
DEMO_RATE_SCALE = 10.0
DEMO_INTERVAL_S = 3.0  # 30 s of trace time at --rate-scale 10
DEMO_STARTUP_S = 6.0  # 60 s of trace time


def demo(
    out: Annotated[
        Path,
        typer.Option(
            "--out", metavar="DIR", help="Directory for the profile and the plots (created)."
        ),
    ] = Path("dynamo-plan-demo"),
    quick: Annotated[
        bool,
        typer.Option("--quick", help="Only the first 2 minutes of the trace, no profile plots."),
    ] = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Estimate a profile, replay a real trace through every scaling policy, print the table and
    write the plots — offline, in seconds."""
    from dynamo_plan.formats.files import output_dir

    started = time.perf_counter()
    with output_dir(out):  # a demo that fails midway leaves no directory it created behind
        _run_demo(out, quick, output, started)


def _run_demo(out: Path, quick: bool, output: OutputFormat, started: float) -> None:
    """The demo's work, writing into the directory ``out`` (exists)."""
    import numpy as np

    from dynamo_plan.adapters.profile_files import load_profile
    from dynamo_plan.cli.simulate import compare_table, run_and_report
    from dynamo_plan.core.sla import SLA
    from dynamo_plan.profiler.offline import OfflineRequest, run_offline
    from dynamo_plan.profiler.sweep import SweepSLA
    from dynamo_plan.resources import shipped_file
    from dynamo_plan.sim import RequestArrays, SimConfig
    from dynamo_plan.sim.compare import POLICY_NAMES, PolicyOptions, compare_json
    from dynamo_plan.trace import load_trace

    trace_path = shipped_file("sample_traces", DEMO_TRACE)
    trace = load_trace([trace_path])
    requests = RequestArrays.from_trace(trace, rate_scale=DEMO_RATE_SCALE)
    if quick:
        keep = requests.arrival_s < 12.0  # 2 minutes of trace time
        requests = RequestArrays(requests.arrival_s[keep], requests.isl[keep], requests.osl[keep])
    isl = round(float(np.mean(requests.isl)))
    osl = round(float(np.mean(requests.osl)))
    profile_dir = out / "profile"
    outcome = run_offline(
        OfflineRequest(
            model=DEMO_MODEL,
            system=DEMO_SYSTEM,
            backend=DEMO_BACKEND,
            sla=SweepSLA(isl, osl, DEMO_TTFT_MS, DEMO_ITL_MS),
            out=profile_dir,
            max_gpus_per_engine=1,
            plots=not quick,
        )
    )
    profile = load_profile(profile_dir)
    err_console.print(
        f"profile: {outcome.model} on {outcome.system} ({DEMO_BACKEND}, estimated) -> "
        f"{profile_dir}; trace: {trace_path.name} ×{DEMO_RATE_SCALE:g} "
        f"({len(requests)} requests, mean ISL {isl}, OSL {osl})",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    plot = out / "simulation_compare.png"
    csv = out / "requests.csv"
    sla = SLA(DEMO_TTFT_MS, DEMO_ITL_MS)
    title = f"demo: {DEMO_MODEL} on {DEMO_SYSTEM}, {trace_path.name} ×{DEMO_RATE_SCALE:g}"
    options = PolicyOptions()
    results = run_and_report(
        requests,
        profile,
        sla,
        SimConfig(interval_s=DEMO_INTERVAL_S, startup_s=DEMO_STARTUP_S),
        list(POLICY_NAMES),
        options,
        compare=True,
        output=output,
        plot=plot,
        requests_csv=csv,
        title=title,
        show=False,
    )
    files = [*(str(p) for p in outcome.plots), str(plot), str(csv)]
    docs = compare_json(results)
    data: dict[str, Any] = {
        "profile": str(profile_dir),
        "model": outcome.model,
        "system": outcome.system,
        "backend": DEMO_BACKEND,
        "trace": trace_path.name,
        "rate_scale": DEMO_RATE_SCALE,
        "interval_s": DEMO_INTERVAL_S,
        "startup_s": DEMO_STARTUP_S,
        "sla": {"ttft_ms": DEMO_TTFT_MS, "itl_ms": DEMO_ITL_MS},
        "results": docs,
        "files": files,
        "wall_s": time.perf_counter() - started,
    }
    target = options.attainment_target
    emit(data, output, table=lambda: compare_table(docs, sla, title, target))
    if output is OutputFormat.table:
        # soft_wrap: rich inserts no line breaks, so the next: command stays one copyable line
        err_console.print(
            f"wrote {', '.join(files)} in {time.perf_counter() - started:.1f} s\n"
            f"next: dynamo-plan simulate {shlex.quote(str(trace_path))} "
            f"--profile {shlex.quote(str(profile_dir))} "
            f"--ttft {DEMO_TTFT_MS:g} --itl {DEMO_ITL_MS:g} --rate-scale {DEMO_RATE_SCALE:g} "
            f"--interval {DEMO_INTERVAL_S:g} --startup-s {DEMO_STARTUP_S:g} --compare",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
