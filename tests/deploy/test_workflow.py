"""The client-side DGDR workflow (``dgdr run`` / ``dgdr status``) against the API stand-in."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from dynamo_plan.adapters.kubernetes import KubeClient
from dynamo_plan.errors import InfeasibleSLAError, InputError
from dynamo_plan.profiler.workflow import (
    SPEC_HASH,
    apply_dgdr,
    dgdr_status,
    output_configmap_name,
    run_dgdr,
    spec_hash,
)
from tests.k8s_standin import StandIn


def dgdr_doc(
    name: str = "llama", ttft: float = 200, auto_apply: bool = False, offline: bool = True
) -> dict[str, Any]:
    """A small offline DGDR: llama-3.1-8b on h200_sxm (profiles in well under a second)."""
    sweep: dict[str, Any] = {"aicSystem": "h200_sxm", "aicHfId": "llama-3.1-8b"}
    if offline:
        sweep["useAiConfigurator"] = True
    return {
        "apiVersion": "nvidia.com/v1alpha1",
        "kind": "DynamoGraphDeploymentRequest",
        "metadata": {"name": name},
        "spec": {
            "model": "meta-llama/Llama-3.1-8B-Instruct",
            "backend": "vllm",
            "autoApply": auto_apply,
            "profilingConfig": {
                "profilerImage": "nvcr.io/nvidia/ai-dynamo/profiler:x",
                "config": {
                    "sla": {"isl": 3000, "osl": 150, "ttft": ttft, "itl": 20},
                    "sweep": sweep,
                },
            },
        },
    }


def write_dgdr(path: Path, **kwargs: Any) -> Path:
    path.write_text(yaml.safe_dump(dgdr_doc(**kwargs)))
    return path


@pytest.fixture
def kube(standin: StandIn, tmp_path: Path) -> KubeClient:
    path = standin.kubeconfig(tmp_path / "kubeconfig", namespace="team")
    return KubeClient(kubeconfig=path, backoff_s=0.01).connect()


def _phases() -> tuple[list[str], Any]:
    seen: list[str] = []
    return seen, lambda state, _msg: seen.append(state)


def test_spec_hash_ignores_key_order_and_sees_changes() -> None:
    spec = dgdr_doc()["spec"]
    reordered = dict(reversed(list(spec.items())))
    assert spec_hash(spec) == spec_hash(reordered)
    assert spec_hash(spec) != spec_hash(dgdr_doc(ttft=300)["spec"])


def test_run_without_auto_apply_writes_status_and_configmaps(
    kube: KubeClient, standin: StandIn, tmp_path: Path
) -> None:
    standin.install_crd()
    seen, on_phase = _phases()
    result = run_dgdr(write_dgdr(tmp_path / "d.yaml"), kube, None, on_phase=on_phase)
    assert seen == result.phases == ["Pending", "Profiling", "Ready"]
    live = standin.get("dynamographdeploymentrequests", "team", "llama")
    assert live is not None and live["status"]["state"] == "Ready"
    assert live["metadata"]["annotations"][SPEC_HASH] == spec_hash(dgdr_doc()["spec"])
    dgd = live["status"]["generatedDeployment"]
    assert dgd["kind"] == "DynamoGraphDeployment" and dgd["metadata"]["name"] == "llama"
    types = {c["type"]: c["status"] for c in live["status"]["conditions"]}
    # the condition types the v1alpha1 CRD documents; no DeploymentReady: not deployed
    assert types == {"Validation": "True", "Profiling": "True", "SpecGenerated": "True"}
    assert live["status"]["profilingResults"] == "configmap/llama-profile"
    assert live["status"]["backend"] == "vllm"
    out_cm = standin.get("configmaps", "team", output_configmap_name("llama"))
    assert out_cm is not None and yaml.safe_load(out_cm["data"]["dgd.yaml"]) == dgd
    profile_cm = standin.get("configmaps", "team", "llama-profile")
    assert profile_cm is not None and "prefill_raw_data.json" in profile_cm["data"]
    assert standin.get("dynamographdeployments", "team", "llama") is None  # not applied


def test_status_writes_go_through_the_status_subresource(
    kube: KubeClient, standin: StandIn, tmp_path: Path
) -> None:
    standin.install_crd()
    run_dgdr(write_dgdr(tmp_path / "d.yaml"), kube, None)
    status_writes = [p for m, p in standin.requests if m == "PATCH" and p.endswith("/status")]
    assert len(status_writes) == 3  # Pending, Profiling, Ready


def test_auto_apply_deploys_and_waits_for_ready(
    kube: KubeClient, standin: StandIn, tmp_path: Path
) -> None:
    standin.install_crd()
    stop = threading.Event()

    def controller() -> None:  # marks the DGD Ready once it exists, as the operator would
        while not stop.is_set():
            if standin.get("dynamographdeployments", "team", "llama") is not None:
                standin.set_condition("dynamographdeployments", "team", "llama", "Ready", "True")
                return
            stop.wait(0.02)

    thread = threading.Thread(target=controller, daemon=True)
    thread.start()
    try:
        path = write_dgdr(tmp_path / "d.yaml", auto_apply=True)
        result = run_dgdr(path, kube, None, timeout_s=10, poll_s=0.05)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert result.phases == ["Pending", "Profiling", "Deploying", "Ready"]
    dgd = standin.get("dynamographdeployments", "team", "llama")
    assert dgd is not None
    assert {m["manager"] for m in dgd["metadata"]["managedFields"]} == {"dynamo-plan"}
    live = standin.get("dynamographdeploymentrequests", "team", "llama")
    assert live is not None and live["status"]["state"] == "Ready"
    assert live["status"]["deployment"] == {
        "name": "llama", "namespace": "team", "state": "successful", "created": True,
    }  # fmt: skip
    types = {c["type"]: c["status"] for c in live["status"]["conditions"]}
    assert types["DeploymentReady"] == "True"


def test_infeasible_sla_writes_failed_and_raises(
    kube: KubeClient, standin: StandIn, tmp_path: Path
) -> None:
    standin.install_crd()
    with pytest.raises(InfeasibleSLAError) as e:
        run_dgdr(write_dgdr(tmp_path / "d.yaml", ttft=0.001), kube, None)
    live = standin.get("dynamographdeploymentrequests", "team", "llama")
    assert live is not None and live["status"]["state"] == "Failed"
    failed = [c for c in live["status"]["conditions"] if c["type"] == "Profiling"]
    assert failed[0]["status"] == "False" and failed[0]["message"] == str(e.value)


def test_online_profiling_needs_a_cluster(tmp_path: Path) -> None:
    # online profiling with a cluster: tests/deploy/test_workflow_online.py
    seen, on_phase = _phases()
    with pytest.raises(InputError, match="drop --no-cluster"):
        run_dgdr(
            write_dgdr(tmp_path / "d.yaml", offline=False), None, None, tmp_path / "o", on_phase
        )
    assert seen == ["Pending", "Profiling", "Failed"]


@pytest.mark.parametrize("crd", [True, False])
def test_changed_spec_is_refused_after_profiling(
    kube: KubeClient, standin: StandIn, tmp_path: Path, crd: bool
) -> None:
    if crd:
        standin.install_crd()
    run_dgdr(write_dgdr(tmp_path / "d.yaml"), kube, None)
    run_dgdr(write_dgdr(tmp_path / "d.yaml"), kube, None)  # same spec: fine
    with pytest.raises(InputError, match="spec changed since profiling started"):
        run_dgdr(write_dgdr(tmp_path / "d.yaml", ttft=300), kube, None)


def test_without_crd_phases_are_reported_and_configmaps_written(
    kube: KubeClient, standin: StandIn, tmp_path: Path
) -> None:
    seen, on_phase = _phases()
    result = run_dgdr(write_dgdr(tmp_path / "d.yaml"), kube, None, on_phase=on_phase)
    assert not result.crd_installed and seen == ["Pending", "Profiling", "Ready"]
    assert standin.get("dynamographdeploymentrequests", "team", "llama") is None
    assert not [p for m, p in standin.requests if p.endswith("/status")]
    assert standin.get("configmaps", "team", "dgdr-output-llama") is not None
    assert standin.get("configmaps", "team", "llama-profile") is not None


def test_no_cluster_writes_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_dgdr(write_dgdr(tmp_path / "d.yaml"), None, "team", out)
    names = sorted(Path(f).name for f in result.files)
    assert names == ["dgd.yaml", "dgdr-output-llama.yaml", "llama-profile.yaml"]
    kinds = [d["kind"] for d in yaml.safe_load_all((out / "dgd.yaml").read_text())]
    assert kinds[-1] == "DynamoGraphDeployment"
    cm = yaml.safe_load((out / "dgdr-output-llama.yaml").read_text())
    assert cm["metadata"]["namespace"] == "team"
    assert yaml.safe_load(cm["data"]["dgd.yaml"])["metadata"]["name"] == "llama"


def test_status_reads_the_dgdr_or_the_configmap(
    kube: KubeClient, standin: StandIn, tmp_path: Path
) -> None:
    with pytest.raises(InputError, match="not found"):
        dgdr_status(kube, "llama", None)
    run_dgdr(write_dgdr(tmp_path / "d.yaml"), kube, None)
    from_cm = dgdr_status(kube, "llama", None)
    assert from_cm["source"] == "ConfigMap"
    assert from_cm["generatedDeployment"]["metadata"]["name"] == "llama"
    standin.install_crd()
    run_dgdr(write_dgdr(tmp_path / "d.yaml"), kube, None)
    from_dgdr = dgdr_status(kube, "llama", None)
    assert from_dgdr["source"] == "DynamoGraphDeploymentRequest"
    assert from_dgdr["state"] == "Ready" and from_dgdr["conditions"]
    assert from_dgdr["generatedDeployment"] == from_cm["generatedDeployment"]


def test_apply_dgdr_creates_then_is_unchanged(kube: KubeClient, standin: StandIn) -> None:
    assert apply_dgdr(kube, dgdr_doc()).action == "created"
    assert apply_dgdr(kube, dgdr_doc()).action == "unchanged"
    assert standin.get("dynamographdeploymentrequests", "team", "llama") is not None


def test_standin_lists_only_installed_crds(kube: KubeClient, standin: StandIn) -> None:
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    assert kube.request("GET", crds)[1]["items"] == []
    assert kube.request("GET", f"{crds}/dynamographdeploymentrequests.nvidia.com")[0] == 404
    standin.install_crd()
    names = [c["metadata"]["name"] for c in kube.request("GET", crds)[1]["items"]]
    assert names == ["dynamographdeploymentrequests.nvidia.com"]
    code, crd = kube.request("GET", f"{crds}/{names[0]}")
    assert code == 200 and crd["spec"]["names"]["kind"] == "DynamoGraphDeploymentRequest"
