"""Online profiling in a cluster: one temporary DGD + one profiling Job per candidate TP and role.

For every candidate TP (powers of two in the per-engine GPU range) and role (prefill, decode):

1. server-side apply a temporary one-role DynamoGraphDeployment
   (:func:`~dynamo_plan.profiler.cluster_render.render_temp_dgd`) and wait until its condition
   Ready is True (timeout → ClusterError naming it and its last conditions);
2. create the profiling Job (:func:`~dynamo_plan.profiler.cluster_render.render_job`) and wait
   for it (``status.succeeded`` / a ``Complete`` condition; ``status.failed`` / a ``Failed``
   condition → ClusterError with the condition's message; timeout → ClusterError);
3. read the result ConfigMap the Job published (:func:`publish_result_configmap`), then delete
   the DGD, Job (propagation Background: its pods too) and ConfigMap at once (GPUs freed).

Then the TPs are picked with the shared sweep rule (:func:`dynamo_plan.profiler.measured.pick`)
and the profile directory is written as ``profile --offline`` writes it (``write_sweep_profile``).
Whatever happens — success, error, KeyboardInterrupt — everything this run created is deleted in
a ``finally`` (the objects it tracked, then any object labelled with its run id). A cleanup
failure is reported (progress ``cleanup-failed``, a note on the exception, the result's
``leftovers``) and never replaces the original error.

Candidate range: ``spec.enableGpuDiscovery`` → nodes (:mod:`dynamo_plan.profiler.gpu_discovery`)
give the system and the most GPUs on one node; else ``config.hardware.{minNumGpusPerEngine,
maxNumGpusPerEngine, numGpusPerNode, gpuType}`` (max defaults to numGpusPerNode, else 8).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dynamo_plan.adapters.kubernetes import KubeClient
from dynamo_plan.adapters.profile_files import DECODE_JSON, PREFILL_JSON, PROFILE_JSON
from dynamo_plan.core.profile import PrefillCurve
from dynamo_plan.deploy.apply import FIELD_MANAGER
from dynamo_plan.deploy.dgdr_model import DgdrSpec
from dynamo_plan.deploy.render import load_dgdr
from dynamo_plan.errors import InputError
from dynamo_plan.profiler.cluster_run import CM_INFO, ClusterRun, ProfilingProgress, Progress
from dynamo_plan.profiler.dgdr import read_dgdr
from dynamo_plan.profiler.gpu_discovery import GpuDiscovery, discover_gpus
from dynamo_plan.profiler.measured import DecodeMeasurement, parse_decode, parse_prefill, pick
from dynamo_plan.profiler.sweep import (
    SweepResult,
    SweepSLA,
    chosen_points,
    sweep_meta,
    write_sweep_profile,
)

__all__ = [
    "ROLES",
    "OnlineClusterResult",
    "ProfilingProgress",
    "candidate_range",
    "profile_online_cluster",
    "publish_result_configmap",
]

ROLES = ("prefill", "decode")
CONFIGMAP_LIMIT = 1_048_576  # bytes: the API server's limit on one ConfigMap


@dataclass
class OnlineClusterResult:
    """What one run did: the pick, where the profile went, what was measured and cleaned."""

    run_id: str
    namespace: str
    out: Path
    system: str
    candidates: list[int]
    sweep: SweepResult
    discovery: GpuDiscovery | None = None
    measurements: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "namespace": self.namespace,
            "out": str(self.out),
            "system": self.system,
            "candidates": self.candidates,
            "discovery": self.discovery.as_dict() if self.discovery else None,
            **chosen_points(self.sweep),
            "measurements": self.measurements,
            "deleted": self.deleted,
            "leftovers": self.leftovers,
        }


# -- publishing (runs inside the Job) ---------------------------------------------------------


def publish_result_configmap(
    out_dir: Path,
    name: str,
    namespace: str | None,
    kubeconfig: Path | None,
    context: str | None,
    labels: dict[str, str] | None = None,
) -> None:
    """Create or replace ConfigMap ``name`` with the profile files found in ``out_dir``,
    labelled with ``labels`` (the profiling Job passes its run label, so the run's clean-up
    sweep finds a result written late).

    Keys: ``prefill_raw_data.json``, ``decode_raw_data.json``, ``profile.json`` (those that
    exist; at least one). Server-side apply with force, so a rerun replaces the data. The
    namespace defaults to the kubeconfig context's (in a pod: its own).
    """
    data: dict[str, str] = {}
    for rel in (PREFILL_JSON, DECODE_JSON, PROFILE_JSON):
        path = out_dir / rel
        if path.is_file():
            try:
                data[rel.name] = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise InputError(f"{path}: cannot read ({e})") from e
    if not data:
        raise InputError(
            f"{out_dir}: nothing to publish; expected {PREFILL_JSON}, {DECODE_JSON} or "
            f"{PROFILE_JSON}"
        )
    size = sum(len(k) + len(v.encode()) for k, v in data.items())
    if size > CONFIGMAP_LIMIT:
        raise InputError(
            f"{out_dir}: the result is {size} bytes; a ConfigMap holds at most {CONFIGMAP_LIMIT}"
        )
    client = KubeClient(kubeconfig=kubeconfig, context=context).connect()
    ns = namespace or client.default_namespace
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {"app.kubernetes.io/managed-by": "dynamo-plan", **(labels or {})},
        },
        "data": data,
    }
    client.apply(CM_INFO, ns, body, FIELD_MANAGER, force=True)


# -- candidates ---------------------------------------------------------------------------------


def candidate_range(
    request: DgdrSpec, discovery: GpuDiscovery | None
) -> tuple[list[int], str | None]:
    """(candidate TPs = powers of two in [min, max] GPUs per engine, system name or None), from
    the DGDR model (any spelling: the hardware section's GPUs per engine and node, the system)
    or, with GPU discovery, the cluster's largest GPU node."""
    lo = request.min_gpus_per_engine or 1
    system: Any
    if discovery is not None:
        hi, system = discovery.max_gpus_per_node, discovery.system
    else:
        hi = request.max_gpus_per_engine or request.num_gpus_per_node or 8
        system = request.aic_system
    tps = [1 << k for k in range(hi.bit_length()) if lo <= (1 << k) <= hi]
    if not tps:
        raise InputError(
            f"no power-of-two TP between minNumGpusPerEngine {lo} and {hi} GPUs per engine"
        )
    return tps, (str(system) if system else None)


def profile_online_cluster(
    dgdr_path: Path,
    client: KubeClient,
    namespace: str,
    out: Path,
    progress: Progress | None = None,
    poll_s: float = 5.0,
    ready_timeout_s: float = 1800.0,
    job_timeout_s: float = 3600.0,
    run_id: str | None = None,
    plots: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    planner_image: str | None = None,
) -> OnlineClusterResult:
    """Profile the DGDR in ``dgdr_path`` on the cluster and write the profile to ``out``.

    See the module doc for the steps. Raises InputError (bad DGDR), ClusterError (API failure,
    DGD not Ready in ``ready_timeout_s``, Job failed or not done in ``job_timeout_s``, nodes
    forbidden for GPU discovery) and InfeasibleSLAError (no measured TP meets the SLA). Every
    object created is deleted before it returns or raises. ``planner_image``: the profiling
    Jobs' image (``--planner-image``; None: the DGDR's ``plannerImage``, else
    ``dynamo-plan:<package version>``).
    """
    request = load_dgdr(dgdr_path)
    dgdr = dict(request.raw)
    intent = read_dgdr(dgdr_path)
    sla = SweepSLA(intent.isl, intent.osl, intent.ttft_ms, intent.itl_ms)
    run = ClusterRun(
        client, namespace, dgdr, run_id or uuid.uuid4().hex[:8], progress or (lambda _p: None),
        poll_s, ready_timeout_s, job_timeout_s, sleep, planner_image,
    )  # fmt: skip
    discovery = discover_gpus(client) if request.enable_gpu_discovery else None
    candidates, found_system = candidate_range(request, discovery)
    system = found_system or "unknown"
    product = discovery.product if discovery else None
    prefill: dict[int, PrefillCurve] = {}
    decode: dict[int, DecodeMeasurement] = {}
    measurements: list[dict[str, Any]] = []
    run.steps = len(candidates) * len(ROLES)
    try:
        run.say("rbac", "applying the profiler ServiceAccount, Role and RoleBinding")
        run.apply_rbac()
        for tp in candidates:
            for role in ROLES:
                text, where = run.measure(tp, role, product)
                if role == "prefill":
                    prefill[tp] = parse_prefill(text, where)
                else:
                    decode[tp] = parse_decode(text, where)
                measurements.append({"tp": tp, "role": role, "source": where})
                run.step += 1
        run.say("pick", f"picking TPs from {len(candidates)} candidate(s)")
        result = pick(prefill, decode, sla, request.max_context_length)
        meta = sweep_meta(
            result,
            model=intent.model,
            system=system,
            backend=intent.backend,
            obtained_by={
                "method": "measured",
                "where": "cluster",
                "run_id": run.run_id,
                "candidate_tps": candidates,
            },
        )
        result = dataclasses.replace(result, profile=dataclasses.replace(result.profile, meta=meta))
        write_sweep_profile(out, result, plots)
    except BaseException as e:
        _cleanup_after_error(run, e)
        raise
    run.cleanup()
    if run.leftovers:
        run.say("cleanup-failed", "could not delete: " + "; ".join(run.leftovers))
    run.say("done", f"profile written to {out}")
    return OnlineClusterResult(
        run_id=run.run_id,
        namespace=namespace,
        out=out,
        system=system,
        candidates=candidates,
        sweep=result,
        discovery=discovery,
        measurements=measurements,
        deleted=run.deleted,
        leftovers=run.leftovers,
    )


def _cleanup_after_error(run: ClusterRun, error: BaseException) -> None:
    """Delete everything; a cleanup failure becomes a note and a progress event, never the error."""
    try:
        run.cleanup()
    except Exception as e:  # never replace the original error
        run.leftovers.append(f"cleanup stopped: {e}")
    if run.leftovers:
        text = "cleanup failed, delete by hand: " + "; ".join(run.leftovers)
        error.add_note(text)
        with contextlib.suppress(Exception):  # reporting must not mask the original error
            run.say("cleanup-failed", text)
