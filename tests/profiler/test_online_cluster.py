"""Online profiling in a cluster (temporary DGDs + Jobs) against the Kubernetes API stand-in.

A simulator thread (tests/profiler/cluster_sim.py) plays the operator and the Job controller, so
the real REST lifecycle runs: apply DGD → Ready → create Job → result ConfigMap → delete all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from dynamo_plan.adapters.kubernetes import KubeClient
from dynamo_plan.adapters.profile_files import load_profile
from dynamo_plan.deploy.dgdr_model import interpret
from dynamo_plan.errors import ClusterError, InputError
from dynamo_plan.profiler.cluster_render import RUN_LABEL
from dynamo_plan.profiler.gpu_discovery import system_for_product
from dynamo_plan.profiler.online_cluster import (
    ProfilingProgress,
    candidate_range,
    profile_online_cluster,
    publish_result_configmap,
)
from tests.k8s_standin import StandIn
from tests.profiler.cluster_sim import FAIL_MESSAGE, ClusterSim

NS = "team"
PROFILE = Path("profiles") / "h200_llama3.1-8b-fp8_tp1p_tp1d"
TEMP_PLURALS = ("dynamographdeployments", "jobs", "configmaps")


def online_dgdr(
    ttft: float = 50.0,
    max_gpus: int | None = 2,
    discovery: bool = False,
    extra_profiling: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An online DGDR (no useAiConfigurator) for llama-3.1-8b on vLLM."""
    config: dict[str, Any] = {"sla": {"isl": 3000, "osl": 150, "ttft": ttft, "itl": 20}}
    config["planner"] = {"plannerImage": "registry.example/dynamo-plan:test"}  # the Jobs' image
    if max_gpus is not None:
        config["hardware"] = {"maxNumGpusPerEngine": max_gpus, "gpuType": "h200_sxm"}
    profiling: dict[str, Any] = {
        "profilerImage": "nvcr.io/nvidia/ai-dynamo/vllm-runtime:0.9.0",
        "config": config,
        **(extra_profiling or {}),
    }
    return {
        "apiVersion": "nvidia.com/v1alpha1",
        "kind": "DynamoGraphDeploymentRequest",
        "metadata": {"name": "llama-online"},
        "spec": {
            "model": "meta-llama/Llama-3.1-8B-Instruct",
            "backend": "vllm",
            "enableGpuDiscovery": discovery,
            "profilingConfig": profiling,
        },
    }


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def kubeconfig(standin: StandIn, tmp_path: Path) -> Path:
    return standin.kubeconfig(tmp_path / "kubeconfig", namespace=NS)


@pytest.fixture
def kube(kubeconfig: Path) -> KubeClient:
    return KubeClient(kubeconfig=kubeconfig, backoff_s=0.01).connect()


def leftovers(standin: StandIn) -> list[str]:
    """Temporary objects still stored (anything labelled with a profiling run, or a result)."""
    out = []
    for (_g, _v, plural, _ns, name), obj in list(standin.store.objects.items()):
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if plural in TEMP_PLURALS and (RUN_LABEL in labels or name.endswith("-result")):
            out.append(f"{plural}/{name}")
    return out


def run(
    path: Path, kube: KubeClient, out: Path, progress: Any = None, **kw: Any
) -> Any:  # fmt: skip
    return profile_online_cluster(
        path, kube, NS, out, progress=progress, poll_s=0.01, run_id="abc123", **kw
    )


def test_success_measures_every_tp_and_role_and_writes_the_profile(
    standin: StandIn, kube: KubeClient, kubeconfig: Path, shared_data: Path, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "d.yaml",
        online_dgdr(
            extra_profiling={
                "resources": {"limits": {"nvidia.com/gpu": 1}, "requests": {"cpu": "500m"}},
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
                "outputPVC": "profiling-out",
            }
        ),
    )
    events: list[ProfilingProgress] = []
    with ClusterSim(kubeconfig, NS, shared_data / PROFILE) as sim:
        result = run(path, kube, tmp_path / "prof", progress=events.append)
    # two candidates × two roles, one at a time (each measurement's objects deleted before the next)
    assert [(j["metadata"]["labels"]["dynamo-plan/tp"], j["metadata"]["labels"]["dynamo-plan/role"])
            for j in sim.jobs] == [("1", "prefill"), ("1", "decode"), ("2", "prefill"),
                                   ("2", "decode")]  # fmt: skip
    assert sim.max_alive <= 2
    job = sim.jobs[0]
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["activeDeadlineSeconds"] == 3600
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "registry.example/dynamo-plan:test"
    args = container["args"]
    dgd = sim.dgds[0]
    endpoint = f"http://{dgd['metadata']['name']}-frontend.{NS}.svc.cluster.local:8000"
    for flag, value in (("--endpoint", endpoint), ("--tp", "1"), ("--role", "prefill"),
                        ("--isl", "3000"), ("--osl", "150"),
                        ("--model", "meta-llama/Llama-3.1-8B-Instruct")):  # fmt: skip
        assert args[args.index(flag) + 1] == value
    assert args[:1] == ["--online"] and "--result-configmap" in args
    run_label = job["metadata"]["labels"]["dynamo-plan/profiling-run"]
    assert args[args.index("--result-label") + 1] == f"dynamo-plan/profiling-run={run_label}"
    assert container["resources"] == {"limits": {"nvidia.com/gpu": 1}, "requests": {"cpu": "500m"}}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists"}]
    assert pod["serviceAccountName"] == "dynamo-plan-profiler"
    results = next(v for v in pod["volumes"] if v["name"] == "results")
    assert results == {"name": "results", "persistentVolumeClaim": {"claimName": "profiling-out"}}
    # the temporary DGD: frontend + the prefill worker only, aggregated, TP and GPUs set
    services = dgd["spec"]["services"]
    assert sorted(services) == ["Frontend", "VllmPrefillWorker"]
    worker = services["VllmPrefillWorker"]
    wargs = worker["extraPodSpec"]["mainContainer"]["args"]
    assert "--is-prefill-worker" not in wargs
    assert wargs[wargs.index("--tensor-parallel-size") + 1] == "1"
    assert worker["resources"]["limits"]["gpu"] == "1"
    assert dgd["metadata"]["labels"][RUN_LABEL] == "abc123"
    # TTFT 50 ms: TP1 measures ~61 ms at ISL 3000, TP2 (0.6×) ~36 ms → prefill TP2
    assert result.sweep.prefill.tp == 2
    written = load_profile(tmp_path / "prof")
    cms = {
        (n.rsplit("-", 2)[-2][0], int(n.rsplit("-", 2)[-2][1:])): d
        for n, d in sim.published.items()
    }
    pre = json.loads(cms[("p", 2)]["prefill_raw_data.json"])
    np.testing.assert_allclose(written.prefill.ttft_ms, pre["prefill_ttft"])
    dec = json.loads(cms[("d", result.sweep.decode.tp)]["decode_raw_data.json"])
    np.testing.assert_allclose(written.decode.itl_ms, dec["z_itl"])
    assert written.max_kv_tokens == dec["max_kv_tokens"]
    assert written.meta["parallelism"]["prefill"]["tp"] == 2
    assert written.meta["obtained_by"]["method"] == "measured"
    assert leftovers(standin) == [] and result.leftovers == []
    # the profiler RBAC stays (shared by runs); everything temporary is gone
    assert standin.get("serviceaccounts", NS, "dynamo-plan-profiler") is not None
    assert {e.stage for e in events} >= {"deploy", "wait-ready", "job", "result", "pick", "done"}


def test_failed_job_raises_with_its_message_and_cleans_up(
    standin: StandIn, kube: KubeClient, kubeconfig: Path, shared_data: Path, tmp_path: Path
) -> None:
    path = write(tmp_path / "d.yaml", online_dgdr())
    with (
        ClusterSim(kubeconfig, NS, shared_data / PROFILE, mode="fail-job") as sim,
        pytest.raises(ClusterError, match=FAIL_MESSAGE) as e,
    ):
        run(path, kube, tmp_path / "prof")
    assert "TP 1 prefill" in str(e.value) and len(sim.jobs) == 1
    assert leftovers(standin) == []
    assert not (tmp_path / "prof").exists()


def test_ctrl_c_mid_run_cleans_up_everything(
    standin: StandIn, kube: KubeClient, kubeconfig: Path, shared_data: Path, tmp_path: Path
) -> None:
    path = write(tmp_path / "d.yaml", online_dgdr())
    seen: list[str] = []

    def progress(event: ProfilingProgress) -> None:
        seen.append(event.stage)
        if event.stage == "job" and event.step == 1:  # second measurement, DGD Ready
            raise KeyboardInterrupt

    with ClusterSim(kubeconfig, NS, shared_data / PROFILE) as sim, pytest.raises(KeyboardInterrupt):
        run(path, kube, tmp_path / "prof", progress=progress)
    assert sim.dgds and leftovers(standin) == []
    deletes = [p for m, p in standin.requests if m == "DELETE"]
    assert any("/dynamographdeployments/" in p for p in deletes)


def test_dgd_never_ready_times_out_naming_it_and_cleans_up(
    standin: StandIn, kube: KubeClient, kubeconfig: Path, shared_data: Path, tmp_path: Path
) -> None:
    path = write(tmp_path / "d.yaml", online_dgdr())
    with (
        ClusterSim(kubeconfig, NS, shared_data / PROFILE, mode="never-ready"),
        pytest.raises(ClusterError, match=r"timed out after 0\.3 s") as e,
    ):
        run(path, kube, tmp_path / "prof", ready_timeout_s=0.3)
    assert "dp-llama-online-abc123-p1" in str(e.value)
    assert leftovers(standin) == []


def test_cleanup_failure_is_reported_and_keeps_the_original_error(
    standin: StandIn, kube: KubeClient, kubeconfig: Path, shared_data: Path, tmp_path: Path
) -> None:
    path = write(tmp_path / "d.yaml", online_dgdr())
    events: list[ProfilingProgress] = []

    def progress(event: ProfilingProgress) -> None:
        events.append(event)
        if event.stage == "job":
            standin.forbidden.add("jobs")  # deleting (and listing) Jobs is refused from now on
            raise ClusterError("original failure")

    with ClusterSim(kubeconfig, NS, shared_data / PROFILE):
        with pytest.raises(ClusterError) as e:
            run(path, kube, tmp_path / "prof", progress=progress)
        standin.forbidden.clear()
    assert str(e.value) == "original failure"
    notes = " ".join(getattr(e.value, "__notes__", []))
    assert "cleanup failed" in notes and "Job/dp-llama-online-abc123-p1" in notes
    assert events[-1].stage == "cleanup-failed"
    assert standin.get("dynamographdeployments", NS, "dp-llama-online-abc123-p1") is None


def test_gpu_discovery_picks_the_largest_node_and_its_system(
    standin: StandIn, kube: KubeClient, kubeconfig: Path, shared_data: Path, tmp_path: Path
) -> None:
    standin.add_node("cpu-0")
    standin.add_node("gpu-a", gpus=2, product="NVIDIA-H200")
    standin.add_node("gpu-b", gpus=1, product="NVIDIA-A100-SXM4-80GB")
    doc = online_dgdr(max_gpus=None, discovery=True)
    doc["spec"]["profilingConfig"]["resources"] = {"limits": {"nvidia.com/gpu": 1}}
    path = write(tmp_path / "d.yaml", doc)
    with ClusterSim(kubeconfig, NS, shared_data / PROFILE) as sim:
        result = run(path, kube, tmp_path / "prof")
    assert result.discovery is not None and result.discovery.max_gpus_per_node == 2
    assert result.system == "h200_sxm" and result.candidates == [1, 2]
    selector = {"nvidia.com/gpu.product": "NVIDIA-H200"}
    pod = sim.jobs[0]["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == selector
    assert pod["volumes"] == [{"name": "results", "emptyDir": {}}]
    args = pod["containers"][0]["args"]
    assert args[args.index("--out") + 1] == "/results"
    worker = sim.dgds[0]["spec"]["services"]["VllmPrefillWorker"]
    assert worker["extraPodSpec"]["nodeSelector"] == selector
    assert load_profile(tmp_path / "prof").meta["system"] == "h200_sxm"


def test_gpu_discovery_forbidden_names_the_fields_to_set(
    standin: StandIn, kube: KubeClient, tmp_path: Path
) -> None:
    standin.forbidden.add("nodes")
    path = write(tmp_path / "d.yaml", online_dgdr(max_gpus=None, discovery=True))
    with pytest.raises(ClusterError, match="cluster-scoped read of nodes") as e:
        run(path, kube, tmp_path / "prof")
    assert "enableGpuDiscovery: false" in str(e.value) and "hardware.gpuType" in str(e.value)
    assert not any(m in ("POST", "PATCH") for m, _p in standin.requests)


@pytest.mark.parametrize(
    ("product", "system"),
    [("NVIDIA-H100-80GB-HBM3", "h100_sxm"), ("NVIDIA-H100-PCIe", "h100_pcie"),
     ("NVIDIA-A100-SXM4-80GB", "a100_sxm"), ("NVIDIA-GB200", "gb200"), ("NVIDIA-B200", "b200_sxm")],
)  # fmt: skip
def test_system_for_product(product: str, system: str) -> None:
    assert system_for_product(product) == system


def test_unknown_product_is_an_input_error() -> None:
    with pytest.raises(InputError, match="not in the GPU catalog"):
        system_for_product("Tesla-T4")


@pytest.mark.parametrize(
    ("hardware", "expected"),
    [({}, [1, 2, 4, 8]), ({"minNumGpusPerEngine": 2, "maxNumGpusPerEngine": 4}, [2, 4]),
     ({"numGpusPerNode": 6}, [1, 2, 4])],
)  # fmt: skip
def test_candidate_range(hardware: dict[str, Any], expected: list[int]) -> None:
    doc = online_dgdr(max_gpus=None)
    doc["spec"]["profilingConfig"]["config"]["hardware"] = hardware
    assert candidate_range(interpret(doc)[0], None)[0] == expected


def test_publish_result_configmap_creates_then_replaces(
    standin: StandIn, kubeconfig: Path, shared_data: Path, tmp_path: Path
) -> None:
    from tests.profiler.cluster_sim import role_data

    out = tmp_path / "results"
    out.mkdir()
    for key, text in role_data(shared_data / PROFILE, 1, "prefill").items():
        (out / key).write_text(text)
    publish_result_configmap(out, "res", None, kubeconfig, None)
    first = standin.get("configmaps", NS, "res")
    assert first is not None and sorted(first["data"]) == ["prefill_raw_data.json", "profile.json"]
    (out / "prefill_raw_data.json").unlink()
    (out / "decode_raw_data.json").write_text("{}")
    publish_result_configmap(out, "res", "other", kubeconfig, None)
    publish_result_configmap(out, "res", None, kubeconfig, None)
    again = standin.get("configmaps", NS, "res")
    assert again is not None and sorted(again["data"]) == ["decode_raw_data.json", "profile.json"]
    assert standin.get("configmaps", "other", "res") is not None


def test_publish_with_nothing_to_publish_is_an_input_error(
    kubeconfig: Path, tmp_path: Path
) -> None:
    with pytest.raises(InputError, match="nothing to publish"):
        publish_result_configmap(tmp_path, "res", None, kubeconfig, None)
