"""Online-profiling manifests (``dynamo_plan.profiler.cluster_render``) per Dynamo release: the
temporary one-role DGD validates against the release's CRD and runs its worker aggregated; the
profiling Job runs this project's image, never the DGDR's ``profilerImage`` (a Dynamo runtime
image without dynamo-plan) and never ``latest``."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dynamo_plan import __version__
from dynamo_plan.core.releases import DynamoRelease
from dynamo_plan.deploy import dgd_shapes
from dynamo_plan.profiler.cluster_render import (
    TEMP_DGD_RELEASE,
    frontend_url,
    render_job,
    render_temp_dgd,
    run_names,
)
from tests.crd_schema import crd_errors

RELEASES = list(DynamoRelease)
DGDR: dict[str, Any] = {
    "apiVersion": "nvidia.com/v1alpha1",
    "kind": "DynamoGraphDeploymentRequest",
    "metadata": {"name": "llama"},
    "spec": {
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "backend": "vllm",
        "profilingConfig": {
            "profilerImage": "nvcr.io/nvidia/ai-dynamo/vllm-runtime:0.9.0",
            "config": {"sla": {"isl": 3000, "osl": 150, "ttft": 50, "itl": 20}},
        },
    },
}
# the flags that make a worker one half of a disaggregated pair, in any release
DISAGG_FLAGS = ("--is-prefill-worker", "--is-decode-worker", "--disaggregation-mode")


def dgdr(backend: str = "vllm", **planner: Any) -> dict[str, Any]:
    doc = copy.deepcopy(DGDR)
    doc["spec"]["backend"] = backend
    if planner:
        doc["spec"]["profilingConfig"]["config"]["planner"] = planner
    return doc


@pytest.mark.parametrize("release", RELEASES, ids=[r.value for r in RELEASES])
@pytest.mark.parametrize("backend", ["vllm", "sglang", "trtllm"])
@pytest.mark.parametrize("role", ["prefill", "decode"])
def test_temp_dgd_per_release(backend: str, release: DynamoRelease, role: str) -> None:
    names = run_names("llama", "abc123", 2, role)
    dgd = render_temp_dgd(dgdr(backend), names, "team", 2, role, {"x": "y"}, release=release)
    assert dgd["apiVersion"] == release.api_version
    assert crd_errors(dgd, release.value) == []
    comps = dgd_shapes.components(dgd)
    assert sorted(c.role for c in comps) == sorted(["frontend", role])
    worker = next(c for c in comps if c.role == role)
    args = worker.container["args"]
    assert not any(f in args for f in DISAGG_FLAGS)
    tp_flag = "--tp" if backend == "sglang" else "--tensor-parallel-size"
    assert args[args.index(tp_flag) + 1] == "2"
    assert worker.body["replicas"] == 1
    expected = f"http://{names.dgd}-frontend.team.svc.cluster.local:8000"
    assert frontend_url(dgd) == expected


def test_temp_dgd_default_release_is_served_everywhere() -> None:
    dgd = render_temp_dgd(dgdr(), run_names("llama", "r", 1, "decode"), "team", 1, "decode", {})
    assert dgd["apiVersion"] == TEMP_DGD_RELEASE.api_version == "nvidia.com/v1alpha1"
    for release in RELEASES:  # every supported release serves v1alpha1
        assert crd_errors(dgd, release.value) == []


def test_job_runs_the_projects_image() -> None:
    names = run_names("llama", "abc123", 1, "prefill")
    url = "http://x-frontend.team.svc.cluster.local:8000"

    def image(doc: dict[str, Any], flag: str | None = None) -> str:
        job = render_job(doc, names, "team", url, 1, "prefill", {}, 600, image=flag)
        return str(job["spec"]["template"]["spec"]["containers"][0]["image"])

    assert image(dgdr()) == f"dynamo-plan:{__version__}"
    assert image(dgdr(plannerImage="reg/dynamo-plan:dgdr")) == "reg/dynamo-plan:dgdr"
    assert image(dgdr(plannerImage="reg/dynamo-plan:dgdr"), "reg/dynamo-plan:flag") == (
        "reg/dynamo-plan:flag"
    )
    assert "latest" not in image(dgdr())
