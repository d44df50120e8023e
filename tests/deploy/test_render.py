"""Rendering a DGD manifest from a DGDR and a profile (``dynamo_plan.deploy.render``).

Golden files ``tests/golden/dgd_<backend>_<release>.yaml`` (every backend × Dynamo release) come
from :data:`DGDR_TEXT` and the shared H200 profile copied into a temporary directory with
:data:`PROFILE_META` as its ``profile.json`` (prefill TP 1, decode TP 2). They are never
rewritten by a plain test run; after an intended change, regenerate them explicitly with::

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/deploy/test_render.py -k golden -p no:randomly

and review the diff. Every rendered DynamoGraphDeployment is checked against its release's real
CRD (``tests/data/dynamo/<ver>/crds``) the way an API server would (:mod:`tests.crd_schema`), and
its workers against the same release's example DGDs (``tests/data/dynamo/<ver>/examples``).
The per-release cases live in ``tests/deploy/test_render_releases.py``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from dynamo_plan import __version__
from dynamo_plan.adapters.profile_files import load_profile
from dynamo_plan.core.releases import DynamoRelease
from dynamo_plan.deploy import dgd_shapes
from dynamo_plan.deploy.ownership import DGD_LABEL, MANAGED_BY, MANAGED_BY_LABEL
from dynamo_plan.deploy.planner_args import flag_name, planner_flags
from dynamo_plan.deploy.render import (
    LABEL_NAME,
    LABEL_NAMESPACE,
    dump_manifest,
    load_dgdr,
    render,
)
from dynamo_plan.errors import InfeasibleSLAError, InputError
from tests.crd_schema import crd_errors

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
SHARED_PROFILE = "profiles/h200_llama3.1-8b-fp8_tp1p_tp1d"
PROFILE_META: dict[str, Any] = {
    "model": "meta-llama/Llama-3.1-8B-Instruct",
    "system": "h200_sxm",
    "parallelism": {
        "prefill": {"tp": 1, "gpus_per_engine": 1},
        "decode": {"tp": 2, "gpus_per_engine": 2},
    },
}
DGDR_TEXT = """\
apiVersion: nvidia.com/v1alpha1
kind: DynamoGraphDeploymentRequest
metadata:
  name: llama-8b
  namespace: serving
spec:
  model: meta-llama/Llama-3.1-8B-Instruct
  backend: {backend}
  profilingConfig:
    profilerImage: nvcr.io/nvidia/ai-dynamo/vllm-runtime:0.6.1
    config:
      sla: {{isl: 3000, osl: 150, ttft: 200, itl: 20.5}}
      planner:
        plannerMinEndpoint: 2
        adjustmentInterval: 60
        loadPredictor: arima
        noCorrection: true
"""
BACKEND_OF_TEMPLATE = {"vllm": "vllm", "sglang": "sglang", "trtllm": "trtllm", "mocker": "vllm"}


def make_profile_dir(shared_data: Path, root: Path, meta: dict[str, Any] | None) -> Path:
    """The shared profile copied under ``root`` with ``meta`` as profile.json (None: none)."""
    out = root / "profile"
    shutil.copytree(shared_data / SHARED_PROFILE, out)
    if meta is not None:
        (out / "profile.json").write_text(json.dumps(meta), encoding="utf-8")
    return out


def dgdr_doc(backend: str = "vllm", **planner: Any) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(DGDR_TEXT.format(backend=backend))
    doc["spec"]["profilingConfig"]["config"]["planner"].update(planner)
    return doc


RELEASES = list(DynamoRelease)
BACKENDS = ["vllm", "sglang", "trtllm", "mocker"]


def check_dgd(dgd: dict[str, Any], release: DynamoRelease) -> None:
    """The DGD validates against ``release``'s CRD (as its API server would check it), in the
    apiVersion that release stores, with one frontend and one worker per role."""
    assert dgd["apiVersion"] == release.api_version
    assert crd_errors(dgd, release.value) == []
    roles = sorted(c.role for c in dgd_shapes.components(dgd))
    assert roles.count("frontend") == 1
    assert [r for r in roles if r in ("prefill", "decode")] == ["decode", "prefill"]
    for comp in dgd_shapes.components(dgd):
        args = comp.container.get("command", []) + comp.container.get("args", [])
        assert all(isinstance(a, str) for a in args), comp.name
        assert isinstance(comp.body["replicas"], int) and comp.body["replicas"] >= 1


def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in objects}


def workers(dgd: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The v1alpha1 worker services by role (the 0.6/0.9 shape)."""
    return {
        s["subComponentType"]: s
        for s in dgd["spec"]["services"].values()
        if s["componentType"] == "worker"
    }


def flag(args: list[str], name: str) -> str:
    assert args.count(name) == 1, (name, args)
    return args[args.index(name) + 1]


@pytest.fixture
def profile_dir(shared_data: Path, tmp_path: Path) -> Path:
    return make_profile_dir(shared_data, tmp_path, PROFILE_META)


@pytest.mark.parametrize("release", RELEASES, ids=[r.value for r in RELEASES])
@pytest.mark.parametrize("template", BACKENDS)
def test_golden_manifest(template: str, release: DynamoRelease, profile_dir: Path) -> None:
    doc = dgdr_doc(BACKEND_OF_TEMPLATE[template])
    out = render(doc, load_profile(profile_dir), mocker=template == "mocker", release=release)
    text = dump_manifest(out.objects)
    golden = GOLDEN / f"dgd_{template}_{release.value}.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8"), f"regenerate with UPDATE_GOLDEN=1: {golden}"
    objects = list(yaml.safe_load_all(text))
    assert [o["kind"] for o in objects] == [
        "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "DynamoGraphDeployment",
    ]  # fmt: skip
    assert out.template == dgd_shapes.template_path(template, release)
    check_dgd(objects[-1], release)


@pytest.mark.parametrize("backend", ["vllm", "sglang", "trtllm"])
def test_tp_in_args_and_gpu_limits(backend: str, profile_dir: Path) -> None:
    release = DynamoRelease.v0_9
    dgd = by_kind(render(dgdr_doc(backend), load_profile(profile_dir), release=release).objects)
    tp_flag = "--tp" if backend == "sglang" else "--tensor-parallel-size"
    for role, tp in (("prefill", 1), ("decode", 2)):
        svc = workers(dgd["DynamoGraphDeployment"])[role]
        assert flag(svc["extraPodSpec"]["mainContainer"]["args"], tp_flag) == str(tp)
        assert svc["resources"]["limits"]["gpu"] == str(tp)


def test_disaggregation_flags_per_backend(profile_dir: Path) -> None:
    profile = load_profile(profile_dir)
    old = DynamoRelease.v0_6
    dgd = by_kind(render(dgdr_doc("vllm"), profile, release=old).objects)["DynamoGraphDeployment"]
    vllm = workers(dgd)
    assert "--is-prefill-worker" in vllm["prefill"]["extraPodSpec"]["mainContainer"]["args"]
    assert "--is-prefill-worker" not in vllm["decode"]["extraPodSpec"]["mainContainer"]["args"]
    for backend in ("sglang", "trtllm"):
        objects = render(dgdr_doc(backend), profile, release=old).objects
        dgd = by_kind(objects)["DynamoGraphDeployment"]
        for role, svc in workers(dgd).items():
            args = svc["extraPodSpec"]["mainContainer"]["args"]
            assert flag(args, "--disaggregation-mode") == role
            assert flag(args, "--model-path") == "meta-llama/Llama-3.1-8B-Instruct"


def test_mocker_from_spec_use_mocker(profile_dir: Path) -> None:
    doc = dgdr_doc("sglang")
    doc["spec"]["useMocker"] = True
    out = render(doc, load_profile(profile_dir), release=DynamoRelease.v0_9)
    assert out.template == "mocker/disagg-v1alpha1-0.9.yaml"
    for svc in workers(by_kind(out.objects)["DynamoGraphDeployment"]).values():
        assert svc["extraPodSpec"]["mainContainer"]["command"][-1] == "dynamo.mocker"
        assert "resources" not in svc


@pytest.mark.parametrize("release", RELEASES, ids=[r.value for r in RELEASES])
def test_planner_container(release: DynamoRelease, profile_dir: Path) -> None:
    doc = dgdr_doc(
        maxGpuBudget=16, loadQuantile=0.9, prometheusEndpoint="http://prom:9090",
        noOperation=False, environment="kubernetes",
    )  # fmt: skip
    out = render(doc, load_profile(profile_dir), release=release)
    objs = by_kind(out.objects)
    planner = dgd_shapes.planners(objs["DynamoGraphDeployment"])[0]
    container = planner.container
    assert container["command"] == ["dynamo-plan", "plan", "run"]
    assert container["image"] == f"dynamo-plan:{__version__}"
    args = container["args"]
    sla = doc["spec"]["profilingConfig"]["config"]["sla"]
    assert flag(args, "--profile") == "/data/profile"
    for key in ("ttft", "itl", "isl", "osl"):
        assert float(flag(args, f"--{key}")) == sla[key]
    assert flag(args, "--model") == doc["spec"]["model"]
    if release is DynamoRelease.v1_5:  # the operator's DYN_NAMESPACE (<k8s ns>-<dgd>)
        assert "--namespace" not in args and "dynamoNamespace" not in planner.body
    else:
        assert flag(args, "--namespace") == planner.body["dynamoNamespace"] == out.name
    assert flag(args, "--connector") == "kubernetes"
    assert flag(args, "--dgd") == out.name
    assert flag(args, "--metrics-addr") == "0.0.0.0"
    assert flag(args, "--min-endpoint") == "2"
    assert flag(args, "--interval") == "60"
    assert flag(args, "--predictor") == "arima"
    assert flag(args, "--max-gpu-budget") == "16"
    assert flag(args, "--load-quantile") == "0.9"
    assert flag(args, "--prometheus-url") == "http://prom:9090"
    assert flag(args, "--prefill-engine-num-gpu") == "1"
    assert flag(args, "--decode-engine-num-gpu") == "2"
    assert "--no-correction" in args
    for dynamo_only in ("--environment", "--no-operation", "--kube-namespace"):
        assert dynamo_only not in args
    mount = container["volumeMounts"][0]
    volume = planner.pod["volumes"][0]
    assert mount["mountPath"] == "/data/profile" and mount["name"] == volume["name"]
    assert volume["configMap"]["name"] == objs["ConfigMap"]["metadata"]["name"]
    assert objs["ConfigMap"]["metadata"]["name"] == f"{out.name}-profile"
    assert planner.pod["serviceAccountName"] == objs["ServiceAccount"]["metadata"]["name"]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("plannerMinEndpoint", "--min-endpoint"),
        ("maxGpuBudget", "--max-gpu-budget"),
        ("prefillEngineNumGpu", "--prefill-engine-num-gpu"),
        ("loadPredictionWindowSize", "--load-prediction-window-size"),
        ("startupS", "--startup-s"),
        ("adjustmentInterval", "--interval"),
        ("loadPredictor", "--predictor"),
        ("prometheusEndpoint", "--prometheus-url"),
        ("planner", "--planner"),
        ("plannerish", "--plannerish"),
    ],
)
def test_flag_name_mapping(key: str, expected: str) -> None:
    assert flag_name(key) == expected


def test_planner_flags_values() -> None:
    with pytest.raises(InputError, match=r"planner\.maxGpuBudget: expected a number or a string"):
        planner_flags({"maxGpuBudget": [1, 2]})
    out = planner_flags({"maxGpuBudget": 16.0, "loadQuantile": 0.25, "noCorrection": True})
    assert out.args() == ["--max-gpu-budget", "16", "--load-quantile", "0.25", "--no-correction"]


def test_deployment_overrides_applied(profile_dir: Path) -> None:
    doc = dgdr_doc()
    doc["spec"]["deploymentOverrides"] = {
        "name": "llama-prod", "namespace": "prod", "labels": {"tier": "gold"},
        "annotations": {"owner": "platform"}, "workersImage": "registry.local/vllm:custom",
    }  # fmt: skip
    out = render(doc, load_profile(profile_dir), release=DynamoRelease.v0_9)
    assert (out.name, out.namespace) == ("llama-prod", "prod")
    dgd = by_kind(out.objects)["DynamoGraphDeployment"]
    meta = dgd["metadata"]
    assert (meta["name"], meta["namespace"]) == ("llama-prod", "prod")
    assert meta["labels"] == {
        "tier": "gold", LABEL_NAME: "llama-8b", LABEL_NAMESPACE: "serving",
        MANAGED_BY_LABEL: MANAGED_BY, DGD_LABEL: "llama-prod",
    }  # fmt: skip
    assert meta["annotations"] == {"owner": "platform"}
    for name, svc in dgd["spec"]["services"].items():
        image = svc["extraPodSpec"]["mainContainer"]["image"]
        assert svc["dynamoNamespace"] == "llama-prod"
        assert (image == "registry.local/vllm:custom") == (svc["componentType"] != "planner"), name
    assert all(o["metadata"]["namespace"] == "prod" for o in out.objects)
    names = {o["kind"]: o["metadata"]["name"] for o in out.objects}
    assert names == {
        "ServiceAccount": "llama-prod-planner", "Role": "llama-prod-planner",
        "RoleBinding": "llama-prod-planner", "ConfigMap": "llama-prod-profile",
        "DynamoGraphDeployment": "llama-prod",
    }  # fmt: skip


def test_labels_on_every_object_and_default_namespace(profile_dir: Path) -> None:
    doc = dgdr_doc()
    del doc["metadata"]["namespace"]
    out = render(doc, load_profile(profile_dir))
    assert out.namespace is None
    for obj in out.objects:
        assert "namespace" not in obj["metadata"]
        labels = obj["metadata"]["labels"]
        assert labels[LABEL_NAME] == "llama-8b" and labels[LABEL_NAMESPACE] == "default"
        assert labels[MANAGED_BY_LABEL] == MANAGED_BY and labels[DGD_LABEL] == "llama-8b"


@pytest.mark.parametrize("release", RELEASES, ids=[r.value for r in RELEASES])
def test_no_planner_leaves_out_planner_configmap_and_rbac(
    release: DynamoRelease, profile_dir: Path
) -> None:
    out = render(dgdr_doc(), load_profile(profile_dir), planner=False, release=release)
    assert [o["kind"] for o in out.objects] == ["DynamoGraphDeployment"]
    assert dgd_shapes.planners(out.objects[0]) == []
    check_dgd(out.objects[0], release)


DGD_RULE = {
    "apiGroups": ["nvidia.com"],
    "resources": ["dynamographdeployments"],
    "verbs": ["get", "list", "watch", "patch"],
}
ADAPTER_RULES = [
    {"apiGroups": ["nvidia.com"], "resources": ["dynamographdeploymentscalingadapters"],
     "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["nvidia.com"], "resources": ["dynamographdeploymentscalingadapters/scale"],
     "verbs": ["get", "patch", "update"]},
]  # fmt: skip


@pytest.mark.parametrize("release", RELEASES, ids=[r.value for r in RELEASES])
def test_rbac_least_privilege(release: DynamoRelease, profile_dir: Path) -> None:
    objs = by_kind(render(dgdr_doc(), load_profile(profile_dir), release=release).objects)
    adapters = ADAPTER_RULES if release.has_scaling_adapters else []
    assert objs["Role"]["rules"] == [DGD_RULE, *adapters]
    assert objs["Role"]["metadata"]["name"] == "llama-8b-planner"
    binding = objs["RoleBinding"]
    assert binding["roleRef"]["name"] == objs["Role"]["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": objs["ServiceAccount"]["metadata"]["name"]}
    ]


def test_configmap_round_trips_to_the_profile(profile_dir: Path, tmp_path: Path) -> None:
    profile = load_profile(profile_dir)
    data = by_kind(render(dgdr_doc(), profile).objects)["ConfigMap"]["data"]
    assert sorted(data) == ["decode_raw_data.json", "prefill_raw_data.json", "profile.json"]
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    for name, text in data.items():
        (mounted / name).write_text(text, encoding="utf-8")
    back = load_profile(mounted)
    assert back.meta == PROFILE_META and back.max_kv_tokens == profile.max_kv_tokens
    np.testing.assert_array_equal(back.prefill.ttft_ms, profile.prefill.ttft_ms)
    np.testing.assert_array_equal(back.decode.thpt_per_gpu, profile.decode.thpt_per_gpu)


def test_replicas_floor_and_budget(profile_dir: Path) -> None:
    profile = load_profile(profile_dir)
    out = render(dgdr_doc(plannerMinEndpoint=3, maxGpuBudget=9), profile)
    assert out.replicas == {"prefill": 3, "decode": 3}
    rendered = dgd_shapes.workers(out.objects[-1], out.template)
    assert {r: c.body["replicas"] for r, c in rendered.items()} == out.replicas
    with pytest.raises(InfeasibleSLAError, match="max_gpu_budget 8"):
        render(dgdr_doc(plannerMinEndpoint=3, maxGpuBudget=8), profile)  # needs 3·(1+2) = 9


def test_tp_from_planner_hint_without_profile_json(shared_data: Path, tmp_path: Path) -> None:
    profile = load_profile(make_profile_dir(shared_data, tmp_path, None))
    out = render(dgdr_doc(decodeEngineNumGpu=4, maxGpuBudget=16), profile)
    assert out.tp == {"prefill": 1, "decode": 4}


def test_tp_hint_disagreeing_with_profile_is_input_error(profile_dir: Path) -> None:
    with pytest.raises(
        InputError,
        match=r"decode TP 2, the DGDR asks for decode TP 1 \(.*planner\.decodeEngineNumGpu",
    ):
        render(dgdr_doc(decodeEngineNumGpu=1), load_profile(profile_dir))


def test_load_dgdr_error_names_file_line_and_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(DGDR_TEXT.format(backend="vllm").replace("ttft: 200", "ttft: -5"))
    with pytest.raises(InputError) as info:
        load_dgdr(bad)
    assert (
        str(info.value) == f"{bad}:12: spec.profilingConfig.config.sla.ttft: must be > 0 ms, got -5"
    )
    good = tmp_path / "good.yaml"
    good.write_text(DGDR_TEXT.format(backend="vllm"))
    assert load_dgdr(good).name == "llama-8b"


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        (
            {"model": "meta-llama/Llama-3.1-70B-Instruct"},
            "is for model meta-llama/Llama-3.1-70B-Instruct (decode TP2), the DGDR d.yaml asks "
            "for meta-llama/Llama-3.1-8B-Instruct (vllm)",
        ),
        (
            {"backend": "sglang"},
            "is for model meta-llama/Llama-3.1-8B-Instruct (sglang, decode TP2), the DGDR d.yaml "
            "asks for meta-llama/Llama-3.1-8B-Instruct (vllm)",
        ),
    ],
    ids=["model", "backend"],
)
def test_profile_for_another_model_or_backend_is_input_error(
    shared_data: Path, tmp_path: Path, meta: dict[str, Any], expected: str
) -> None:
    recorded = {**PROFILE_META, **meta}
    recorded["parallelism"] = {"decode": {"tp": 2}}
    folder = make_profile_dir(shared_data, tmp_path, recorded)
    with pytest.raises(InputError) as info:
        render(dgdr_doc(), load_profile(folder), dgdr_path=Path("d.yaml"), profile_path=folder)
    assert str(info.value).startswith(f"profile {folder / 'profile.json'} ")
    assert expected in str(info.value)


def test_profile_model_matches_aic_hf_id_or_catalogue_name(
    shared_data: Path, tmp_path: Path
) -> None:
    """spec.model is the served name; sweep.aicHfId (what the estimator profiled) also counts,
    and an HF id equals its catalogue short name."""
    doc = dgdr_doc()
    doc["spec"]["model"] = "my-llama"
    folder = make_profile_dir(shared_data, tmp_path, {**PROFILE_META, "model": "llama-3.1-8b"})
    with pytest.raises(InputError, match="asks for my-llama"):
        render(doc, load_profile(folder))
    doc["spec"]["profilingConfig"]["config"]["sweep"] = {"aicHfId": "meta-llama/Llama-3.1-8B"}
    assert render(doc, load_profile(folder)).tp == {"prefill": 1, "decode": 2}


def test_profile_tp_outside_the_dgdrs_gpus_per_engine_is_input_error(profile_dir: Path) -> None:
    doc = dgdr_doc()
    doc["spec"]["profilingConfig"]["config"]["hardware"] = {"maxNumGpusPerEngine": 1}
    with pytest.raises(
        InputError, match=r"decode TP 2 \(2 GPUs per engine\), the DGDR allows 1\.\.1"
    ):
        render(doc, load_profile(profile_dir))
    doc["spec"]["profilingConfig"]["config"]["hardware"] = {"maxNumGpusPerEngine": 2}
    assert render(doc, load_profile(profile_dir)).tp == {"prefill": 1, "decode": 2}
