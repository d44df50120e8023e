"""``dgdr run`` for every DGDR spelling: status as each CRD names it, the release written for,
``configMapRef`` read from the cluster, a v1beta1 DGDR on a cluster that serves only v1alpha1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from dynamo_plan.adapters.kubernetes import KubeClient, kind_info
from dynamo_plan.core.releases import DynamoRelease
from dynamo_plan.deploy.dgdr_cluster import installed_release, served_versions
from dynamo_plan.errors import InfeasibleSLAError, InputError
from dynamo_plan.profiler.workflow import dgdr_status, run_dgdr, status_body
from dynamo_plan.resources import shipped_file
from tests.crd_schema import crd_errors
from tests.k8s_standin import StandIn

DGDRS = Path(__file__).parents[1] / "data" / "dgdrs"
DGDR = "dynamographdeploymentrequests"


def _v1beta1(tmp_path: Path, **spec: Any) -> Path:
    """The v1beta1 test DGDR (Qwen3-0.6B on h200_sxm, rapid search) in namespace team."""
    doc = yaml.safe_load((DGDRS / "v1beta1_1.5.yaml").read_text())
    doc["metadata"]["namespace"] = "team"
    doc["spec"] |= spec
    path = tmp_path / "v1beta1.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@contextmanager
def _standin(release: str) -> Iterator[StandIn]:
    server = StandIn(release=release)
    thread = threading.Thread(target=server.httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        thread.join(timeout=5)


def _client(server: StandIn, tmp_path: Path) -> KubeClient:
    path = server.kubeconfig(tmp_path / "kubeconfig", namespace="team")
    return KubeClient(kubeconfig=path, backoff_s=0.01).connect()


def test_v1beta1_status_is_written_as_its_crd_names_it(standin: StandIn, tmp_path: Path) -> None:
    standin.install_crd()
    kube = _client(standin, tmp_path)
    result = run_dgdr(_v1beta1(tmp_path, autoApply=False), kube, None)
    assert result.phases == ["Pending", "Profiling", "Ready"]
    assert (result.api_version, result.release) == ("nvidia.com/v1beta1", "1.5")
    live = standin.get(DGDR, "team", "qwen3-0-6b")
    assert live is not None and live["apiVersion"] == "nvidia.com/v1beta1"
    assert crd_errors(live, "1.5") == []
    status = live["status"]
    assert status["phase"] == "Ready" and status["dgdName"] == "qwen3-0-6b"
    # cleared once profiling is done: the last apply leaves it out (server-side apply removes a
    # field its manager stops applying; the stand-in does not track status managers)
    assert "profilingPhase" not in result.status
    selected = status["profilingResults"]["selectedConfig"]
    assert set(selected) == {"prefill", "decode"} and selected["decode"]["tp"] >= 1
    types = {c["type"]: c["status"] for c in status["conditions"]}
    assert types == {"Validation": "True", "Profiling": "True", "SpecGenerated": "True",
                     "Succeeded": "True"}  # fmt: skip
    assert status["observedGeneration"] >= 1
    assert "state" not in status and "generatedDeployment" not in status  # v1alpha1's fields
    shown = dgdr_status(kube, "qwen3-0-6b", None)
    assert shown["state"] == "Ready" and shown["dgdName"] == "qwen3-0-6b"
    assert shown["source"] == "DynamoGraphDeploymentRequest"


def test_v1beta1_auto_apply_ends_deployed(standin: StandIn, tmp_path: Path) -> None:
    standin.install_crd()
    kube = _client(standin, tmp_path)
    stop = threading.Event()

    def controller() -> None:  # marks the DGD Ready once it exists, as the operator would
        while not stop.is_set():
            if standin.get("dynamographdeployments", "team", "qwen3-0-6b") is not None:
                standin.set_condition("dynamographdeployments", "team", "qwen3-0-6b", "Ready",
                                      "True")  # fmt: skip
                return
            stop.wait(0.02)

    thread = threading.Thread(target=controller, daemon=True)
    thread.start()
    try:
        result = run_dgdr(_v1beta1(tmp_path), kube, None, timeout_s=10, poll_s=0.05)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert result.phases == ["Pending", "Profiling", "Deploying", "Deployed"]
    live = standin.get(DGDR, "team", "qwen3-0-6b")
    assert live is not None and crd_errors(live, "1.5") == []
    info = live["status"]["deploymentInfo"]
    assert info["replicas"] == info["availableReplicas"] >= 2
    types = {c["type"]: c["status"] for c in live["status"]["conditions"]}
    assert types["DeploymentReady"] == types["Succeeded"] == "True"


def test_failure_marks_the_step_that_failed(standin: StandIn, tmp_path: Path) -> None:
    standin.install_crd()
    kube = _client(standin, tmp_path)
    with pytest.raises(InfeasibleSLAError) as e:
        run_dgdr(_v1beta1(tmp_path, sla={"ttft": 0.001, "itl": 0.001}), kube, None)
    live = standin.get(DGDR, "team", "qwen3-0-6b")
    assert live is not None and crd_errors(live, "1.5") == []
    assert live["status"]["phase"] == "Failed"
    failed = {c["type"]: c for c in live["status"]["conditions"] if c["status"] == "False"}
    assert set(failed) == {"Profiling", "Succeeded"}
    assert failed["Profiling"]["message"] == str(e.value)


@pytest.mark.parametrize("release", ["0.6", "0.9"])
def test_a_v1beta1_dgdr_on_a_v1alpha1_cluster_is_refused_with_the_fix(
    release: str, tmp_path: Path
) -> None:
    with _standin(release) as server:
        server.install_crd()
        kube = _client(server, tmp_path)
        assert installed_release(kube) is DynamoRelease(release)
        with pytest.raises(InputError, match=r"serves v1alpha1: dynamo-plan dgdr convert .* --to "
                           "v1alpha1"):  # fmt: skip
            run_dgdr(_v1beta1(tmp_path), kube, None)


def test_a_0_9_cluster_gets_a_0_9_dgd_and_a_v1alpha1_status(tmp_path: Path) -> None:
    with _standin("0.9") as server:
        server.install_crd()
        kube = _client(server, tmp_path)
        found = served_versions(kube)
        assert found is not None and found.served == ("v1alpha1",) and found.use_mocker
        doc = yaml.safe_load((DGDRS / "v1alpha1_0.9_camel.yaml").read_text())
        doc["spec"]["autoApply"] = False
        path = tmp_path / "camel.yaml"
        path.write_text(yaml.safe_dump(doc))
        result = run_dgdr(path, kube, "team", timeout_s=5)
        assert result.release == "0.9"
        live = server.get(DGDR, "team", "sla-aic")
        assert live is not None and crd_errors(live, "0.9") == []
        status = live["status"]
        assert status["state"] == "Ready" and status["backend"] == "trtllm"
        assert status["generatedDeployment"]["apiVersion"] == "nvidia.com/v1alpha1"
        assert "services" in status["generatedDeployment"]["spec"]  # the 0.9 DGD shape
        assert status["profilingResults"] == "configmap/sla-aic-profile"


def test_config_map_ref_gives_the_base_dgd(standin: StandIn, tmp_path: Path) -> None:
    kube = _client(standin, tmp_path)
    base = yaml.safe_load(shipped_file("templates", "vllm/disagg-v1beta1-1.5.yaml").read_text())
    frontend = next(c for c in base["spec"]["components"] if c["type"] == "frontend")
    frontend["podTemplate"]["spec"]["containers"][0]["image"] = "example.com/own-frontend:1"
    info = kind_info("v1", "ConfigMap")
    assert info is not None
    kube.apply(info, "team", {"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": "base-dgd", "namespace": "team"},
                              "data": {"disagg.yaml": yaml.safe_dump(base)}},
               "test", force=True)  # fmt: skip
    doc = yaml.safe_load((DGDRS / "v1alpha1_0.9_camel.yaml").read_text())
    doc["spec"]["backend"] = "vllm"
    doc["spec"]["profilingConfig"]["configMapRef"] = {"name": "base-dgd"}
    doc["spec"]["autoApply"] = False
    del doc["spec"]["deploymentOverrides"]
    path = tmp_path / "ref.yaml"
    path.write_text(yaml.safe_dump(doc))
    run_dgdr(path, kube, "team", release=DynamoRelease.v1_5)
    cm = standin.get("configmaps", "team", "dgdr-output-sla-aic")
    assert cm is not None
    dgd = yaml.safe_load(cm["data"]["dgd.yaml"])
    images = [c["podTemplate"]["spec"]["containers"][0]["image"] for c in dgd["spec"]["components"]]
    assert "example.com/own-frontend:1" in images
    # without a cluster: one warning line, and the shipped template
    result = run_dgdr(path, None, "team", tmp_path / "out", release=DynamoRelease.v1_5)
    assert (
        len(result.warnings) == 1
        and "reading ConfigMap base-dgd needs a cluster" in (result.warnings[0])
    )
    missing = tmp_path / "missing.yaml"
    doc["spec"]["profilingConfig"]["configMapRef"] = {"name": "absent"}
    doc["metadata"]["name"] = "other"
    missing.write_text(yaml.safe_dump(doc))
    with pytest.raises(InputError, match=r"configMapRef team/absent key disagg\.yaml: no such"):
        run_dgdr(missing, kube, "team")


def test_status_body_writes_only_crd_fields() -> None:
    facts = {"backend": "vllm", "dgd_name": "d", "dgd_namespace": "n", "deployed": True,
             "replicas": 3, "selected": {"decode": {"tp": 2}}, "profile_configmap": "d-profile",
             "dgd": {"apiVersion": "nvidia.com/v1alpha1", "kind": "DynamoGraphDeployment",
                     "metadata": {"name": "d"}, "spec": {}},
             "generation": 4, "job": "profile-d"}  # fmt: skip
    conds: list[dict[str, Any]] = []
    for api, release in (("nvidia.com/v1alpha1", "0.9"), ("nvidia.com/v1beta1", "1.5")):
        obj = {"apiVersion": api, "kind": "DynamoGraphDeploymentRequest",
               "metadata": {"name": "x"}, "spec": {"model": "m", "backend": "vllm",
               "profilingConfig": {"profilerImage": "i"}},
               "status": status_body(api, "Ready", conds, facts)}  # fmt: skip
        if api.endswith("v1beta1"):
            obj["spec"] = {"model": "m"}
        assert crd_errors(obj, release) == []


@pytest.mark.parametrize("name", ["v1alpha1_0.6_snake.yaml", "v1alpha1_0.9_camel.yaml"])
def test_aic_backend_version_reaches_the_estimator(name: str, tmp_path: Path) -> None:
    """Both spellings' aicBackendVersion "0.20.0" go to the estimator choice (AI Configurator's
    database version), which profile.json records."""
    from dynamo_plan.estimator.aic import aiconfigurator_available

    result = run_dgdr(DGDRS / name, None, "team", tmp_path / "out")
    assert result.state == "Ready"
    meta = json.loads((tmp_path / "out" / "profile" / "profile.json").read_text())
    obtained = meta["obtained_by"]
    assert obtained["requested"] == "auto"
    if aiconfigurator_available():  # without it, the choice is made before any version matters
        assert "0.20.0" in json.dumps(obtained)
