"""Every container that runs this project's image starts: its exact ``command`` + ``args`` run
from the wheel installed in a fresh virtualenv (tests/wheel_venv.py), so a renamed or removed flag
fails here, not in a cluster.

Manifests: ``dynamo-plan generate-dgd`` (the CLI) for every backend template (vllm, sglang,
trtllm and the mocker) × every release its ``--dynamo-version`` offers × a scaling and an
observe-only Planner; and the profiling Job of each role
(:func:`dynamo_plan.profiler.cluster_render.render_job`).

What a pod would see is rebuilt around each command: its literal ``env`` (and the DGD service's
``envs``), ``DYN_NAMESPACE`` as the operator sets it, the downward-API namespace and name, each
ConfigMap volume written out from the manifest's ConfigMap, and an empty folder for every other
volume, each at a local path that replaces its ``mountPath`` in the arguments.

The dry runs: ``plan run`` gets ``--print-config -o json`` appended (it checks the settings,
connects nothing and exits 0); ``profile --online`` gets its ``--endpoint`` pointed at a closed
loopback port: it parses and checks every option, then exits 3 on the first request.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.main import get_command

from dynamo_plan.cli.app import app
from dynamo_plan.core.releases import DynamoRelease
from dynamo_plan.deploy.render import TP_FLAG
from dynamo_plan.profiler.cluster_render import render_job, run_names
from tests.conftest import SHARED_DATA, run_cli
from tests.wheel_venv import fresh_venv

PROFILE = SHARED_DATA / "profiles" / "h200_llama3.1-8b-fp8_tp1p_tp1d"
PROFILE_META = {
    "model": "meta-llama/Llama-3.1-8B-Instruct",
    "system": "h200_sxm",
    "parallelism": {
        "prefill": {"tp": 1, "gpus_per_engine": 1},
        "decode": {"tp": 2, "gpus_per_engine": 2},
    },
}
NAMESPACE = "serving"
DGD_NAME = "llama-8b"
PLANNER_IMAGE = "registry.example.com/ml/dynamo-plan:0.0.0-test"
# The planner section of a v1alpha1 DGDR: keys the renderer turns into flags; the variant adds
# its own. A v1beta1 DGDR (Dynamo 1.x) takes Dynamo's PlannerConfig keys in
# spec.features.planner.
PLANNER_KEYS: dict[str, Any] = {
    "plannerMinEndpoint": 2,
    "maxGpuBudget": 16,
    "adjustmentInterval": 60,
    "loadPredictor": "kalman",
    "loadQuantile": 0.9,
    "ttftQuantile": 0.95,
    "scaleDownPatience": 2,
    "noCorrection": True,
    "startupS": 90,
    "prefillEngineNumGpu": 1,
    "decodeEngineNumGpu": 2,
}
PLANNER_CONFIG: dict[str, Any] = {
    "min_endpoint": 2,
    "max_gpu_budget": 16,
    "adjustment_interval": 60,
    "load_predictor": "kalman",
}
VARIANTS: dict[str, dict[str, Any]] = {"scaling": {}, "observe-only": {"noOperation": True}}
CONNECTOR_OF_VARIANT = {"scaling": "kubernetes", "observe-only": "none"}
TEMPLATES = [*sorted(TP_FLAG), "mocker"]
SLA = {"isl": 3000, "osl": 150, "ttft": 200, "itl": 20.5}


def dgdr(backend: str, variant: str, api: str = "v1alpha1", mocker: bool = False) -> dict[str, Any]:
    """The DGDR of a case: ``api`` v1alpha1 (every release) or v1beta1 (1.x)."""
    meta = {"name": DGD_NAME, "namespace": NAMESPACE}
    head = {"apiVersion": f"nvidia.com/{api}", "kind": "DynamoGraphDeploymentRequest"}
    if api == "v1beta1":
        planner = {**PLANNER_CONFIG, "no_operation": variant == "observe-only"}
        spec: dict[str, Any] = {
            "model": PROFILE_META["model"],
            "backend": backend,
            "sla": {"ttft": SLA["ttft"], "itl": SLA["itl"]},
            "workload": {"isl": SLA["isl"], "osl": SLA["osl"]},
            "features": {"planner": planner, "mocker": {"enabled": mocker}},
        }
        return {**head, "metadata": meta, "spec": spec}
    config = {"sla": SLA, "planner": {**PLANNER_KEYS, **VARIANTS[variant]}}
    spec = {
        "model": PROFILE_META["model"],
        "backend": backend,
        "profilingConfig": {
            "profilerImage": "nvcr.io/nvidia/ai-dynamo/vllm-runtime:0.6.1",
            "config": config,
        },
    }
    return {**head, "metadata": meta, "spec": spec}


def generate_dgd_options() -> dict[str, Any]:
    """``generate-dgd``'s options (click parameters) by each of their names (``-o``…)."""
    group: Any = get_command(app)
    ctx = group.make_context("dynamo-plan", ["generate-dgd"], resilient_parsing=True)
    command = group.get_command(ctx, "generate-dgd")
    return {name: p for p in command.params for name in p.opts}


OPTIONS = generate_dgd_options()
HAS_PLANNER_IMAGE = "--planner-image" in OPTIONS


def choices(param: Any) -> list[str]:
    """The values a choice option offers (an Enum-typed Typer option, or a click Choice)."""
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return [str(m.value) for m in annotation]
    offered = getattr(getattr(param, "type", None), "choices", None)
    assert offered, f"{param.opts}: not a choice option"
    return [str(c) for c in offered]


RELEASES: list[str | None] = (
    choices(OPTIONS["--dynamo-version"])
    if "--dynamo-version" in OPTIONS
    else [None]  # before --dynamo-version: the one release generate-dgd renders
)
# (release, DGDR apiVersion): every release from a v1alpha1 DGDR; those that store v1beta1, also
# from a v1beta1 DGDR
CASES = [(r, "v1alpha1") for r in RELEASES] + [
    (r, "v1beta1")
    for r in RELEASES
    if r is not None and DynamoRelease(r).api_version.endswith("/v1beta1")
]


# -- the pods' surroundings -------------------------------------------------------------------


@dataclass
class Container:
    """A container of a rendered manifest, with what its pod gives it."""

    where: str  # path in the manifest, for messages
    spec: dict[str, Any]
    envs: list[dict[str, Any]] = field(default_factory=list)  # the DGD service's `envs`
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)  # pod volumes by name
    dynamo_namespace: str | None = None

    @property
    def argv(self) -> list[str]:
        return [str(a) for a in [*(self.spec.get("command") or []), *(self.spec.get("args") or [])]]


def containers(
    obj: Any, where: str = "", inherited: Container | None = None
) -> Iterator[Container]:
    """Every container-like mapping (``image`` and a ``command`` or ``args``) under ``obj``, with
    the ``envs``, ``volumes`` and ``dynamoNamespace`` of the mappings around it."""
    if isinstance(obj, list):
        for i, item in enumerate(obj):
            yield from containers(item, f"{where}[{i}]", inherited)
        return
    if not isinstance(obj, dict):
        return
    around = Container(where, {}) if inherited is None else inherited
    if "envs" in obj or "volumes" in obj or "dynamoNamespace" in obj:
        around = Container(
            where,
            {},
            envs=[*around.envs, *(obj.get("envs") or [])],
            volumes={**around.volumes, **{v["name"]: v for v in obj.get("volumes") or []}},
            dynamo_namespace=obj.get("dynamoNamespace", around.dynamo_namespace),
        )
    if isinstance(obj.get("image"), str) and ("command" in obj or "args" in obj):
        yield Container(where, obj, around.envs, around.volumes, around.dynamo_namespace)
    for key, value in obj.items():
        yield from containers(value, f"{where}.{key}", around)


def operator(obj: dict[str, Any]) -> Container | None:
    """What Dynamo's operator gives every pod of a DGD: on 1.x (``v1beta1``) ``DYN_NAMESPACE`` =
    ``<k8s namespace>-<DGD name>``; on 0.x each service's ``dynamoNamespace`` (found in the
    walk)."""
    if obj.get("kind") != "DynamoGraphDeployment" or not obj["apiVersion"].endswith("/v1beta1"):
        return None
    meta = obj["metadata"]
    return Container("", {}, dynamo_namespace=f"{meta.get('namespace', NAMESPACE)}-{meta['name']}")


def runs_this_project(container: Container) -> bool:
    """Its image is the project's (``…/dynamo-plan:TAG``) or its command is ``dynamo-plan``."""
    name = container.spec["image"].rsplit("/", 1)[-1].split("@")[0].split(":")[0]
    return name == "dynamo-plan" or container.argv[:1] == ["dynamo-plan"]


def write_configmap(configmap: dict[str, Any], volume: dict[str, Any], out: Path) -> None:
    """The files a ``configMap`` volume shows: every key, or its ``items`` at their paths."""
    files = {k: str(v).encode() for k, v in (configmap.get("data") or {}).items()}
    files |= {k: base64.b64decode(v) for k, v in (configmap.get("binaryData") or {}).items()}
    items = volume["configMap"].get("items")
    paths = {i["key"]: i["path"] for i in items} if items else {k: k for k in files}
    out.mkdir(parents=True)
    for key, path in paths.items():
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_bytes(files[key])


@dataclass
class Pod:
    argv: list[str]
    env: dict[str, str]
    mounts: dict[str, Path]  # mountPath → local folder


def as_pod(container: Container, objects: list[dict[str, Any]], namespace: str, root: Path) -> Pod:
    """``container``'s command line and environment with its volumes as local folders."""
    configmaps = {
        o["metadata"]["name"]: o
        for o in objects
        if o.get("kind") == "ConfigMap" and "metadata" in o
    }
    mounts: dict[str, Path] = {}
    for i, mount in enumerate(container.spec.get("volumeMounts") or []):
        volume = container.volumes.get(mount["name"])
        assert volume is not None, f"{container.where}: no volume {mount['name']}"
        local = root / f"volume-{i}-{mount['name']}"
        if "configMap" in volume:
            name = volume["configMap"]["name"]
            assert name in configmaps, f"{container.where}: ConfigMap {name} is not rendered"
            write_configmap(configmaps[name], volume, local)
        else:  # emptyDir, a PVC: an empty folder
            local.mkdir(parents=True)
        mounts[str(mount["mountPath"])] = local
    argv = [_local_path(a, mounts) for a in container.argv]
    env: dict[str, str] = {}
    if container.dynamo_namespace is not None:
        env["DYN_NAMESPACE"] = container.dynamo_namespace
    env.update(_literal_env([*container.envs, *(container.spec.get("env") or [])], namespace))
    return Pod(argv, env, mounts)


def _local_path(arg: str, mounts: dict[str, Path]) -> str:
    for mount_path, local in mounts.items():
        if arg == mount_path or arg.startswith(mount_path.rstrip("/") + "/"):
            return str(local) + arg[len(mount_path.rstrip("/")) :]
    return arg


def _literal_env(entries: list[dict[str, Any]], namespace: str) -> dict[str, str]:
    """``value`` entries, and the downward API's namespace and pod name."""
    field_values = {"metadata.namespace": namespace, "metadata.name": "pod-0"}
    env: dict[str, str] = {}
    for entry in entries:
        if "value" in entry:
            env[entry["name"]] = str(entry["value"])
        ref = (entry.get("valueFrom") or {}).get("fieldRef") or {}
        if ref.get("fieldPath") in field_values:
            env[entry["name"]] = field_values[ref["fieldPath"]]
    return env


# -- the wheel in a fresh virtualenv ----------------------------------------------------------


@pytest.fixture(scope="module")
def venv_bin(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    env_dir = tmp_path_factory.mktemp("container-venv") / "venv"
    fresh_venv(wheel, env_dir)
    return env_dir / "bin"


def run_in_venv(venv_bin: Path, pod: Pod, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``pod.argv`` with the venv's console script, in an environment of only the pod's variables
    (plus PATH, HOME and the OpenBLAS settings of this machine)."""
    assert pod.argv[0] == "dynamo-plan", pod.argv
    env = {"PATH": f"{venv_bin}{os.pathsep}/usr/bin:/bin", "HOME": str(cwd), "LANG": "C.UTF-8"}
    env |= {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_")}
    env |= pod.env
    return subprocess.run(
        [str(venv_bin / "dynamo-plan"), *pod.argv[1:]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


# -- generate-dgd -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def profile_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("profile") / "profile"
    shutil.copytree(PROFILE, out)
    (out / "profile.json").write_text(json.dumps(PROFILE_META), encoding="utf-8")
    return out


def generate(
    template: str, release: str | None, api: str, variant: str, profile: Path, tmp: Path
) -> Any:
    backend = "vllm" if template == "mocker" else template
    path = tmp / "dgdr.yaml"
    request = dgdr(backend, variant, api, mocker=template == "mocker")
    path.write_text(yaml.safe_dump(request), encoding="utf-8")
    args: list[str | Path] = ["generate-dgd", "--dgdr", path, "--profile", profile]
    if template == "mocker":
        args.append("--mocker")
    if release is not None:
        args += ["--dynamo-version", release]
    if HAS_PLANNER_IMAGE:
        args += ["--planner-image", PLANNER_IMAGE]
    if "-o" in OPTIONS:
        args += ["-o", "yaml"]
    result = run_cli(*args)
    assert result.exit_code == 0, result.stderr
    return [o for o in yaml.safe_load_all(result.stdout) if o]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize(
    ("release", "api"), CASES, ids=[f"dynamo-{r or 'default'}-{a}" for r, a in CASES]
)
@pytest.mark.parametrize("template", TEMPLATES)
def test_every_planner_container_starts(
    template: str,
    release: str | None,
    api: str,
    variant: str,
    profile_dir: Path,
    venv_bin: Path,
    tmp_path: Path,
) -> None:
    objects = generate(template, release, api, variant, profile_dir, tmp_path)
    ours = [
        c
        for o in objects
        for c in containers(o, o.get("kind", ""), operator(o))
        if runs_this_project(c)
    ]
    assert ours, "no container runs the project's image"
    for container in ours:
        if HAS_PLANNER_IMAGE:
            assert container.spec["image"] == PLANNER_IMAGE, container.where
        assert container.argv[:3] == ["dynamo-plan", "plan", "run"], container.where
        pod = as_pod(container, objects, NAMESPACE, tmp_path / "pod")
        run = run_in_venv(venv_bin, _print_config(pod), tmp_path)
        assert run.returncode == 0, f"{container.where}: {pod.argv}\n{run.stderr}"
        settings = json.loads(run.stdout)
        assert settings["connector"] == CONNECTOR_OF_VARIANT[variant]
        # both DGDR forms ask for the same interval and budget
        assert settings["interval"] == PLANNER_KEYS["adjustmentInterval"]
        assert settings["max_gpu_budget"] == PLANNER_KEYS["maxGpuBudget"]
        assert (settings["ttft"], settings["itl"]) == (SLA["ttft"], SLA["itl"])
        assert Path(settings["profile"]) in pod.mounts.values()
        assert settings["namespace"] == pod.env["DYN_NAMESPACE"]


def _print_config(pod: Pod) -> Pod:
    return Pod([*pod.argv, "--print-config", "-o", "json"], pod.env, pod.mounts)


# -- the profiling Job ------------------------------------------------------------------------


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.mark.parametrize("role", ["prefill", "decode"])
def test_profiling_job_container_starts(role: str, venv_bin: Path, tmp_path: Path) -> None:
    request = dgdr("vllm", "scaling")
    names = run_names(DGD_NAME, "run1", 2, role)
    endpoint = f"http://127.0.0.1:{closed_port()}"
    job = render_job(request, names, NAMESPACE, endpoint, 2, role, {}, 600, image=PLANNER_IMAGE)
    (container,) = [c for c in containers(job, "Job") if runs_this_project(c)]
    assert container.spec["image"] == PLANNER_IMAGE  # the project's image, not profilerImage
    assert container.argv[:2] == ["dynamo-plan", "profile"], container.argv
    pod = as_pod(container, [job], NAMESPACE, tmp_path / "pod")
    run = run_in_venv(venv_bin, pod, tmp_path)
    # every option parsed and checked; the first request fails: exit 3 naming the endpoint
    assert run.returncode == 3, f"{pod.argv}\n{run.stderr}"
    assert endpoint in run.stderr and "cannot reach" in run.stderr, run.stderr


def test_a_renamed_flag_is_caught(venv_bin: Path, profile_dir: Path, tmp_path: Path) -> None:
    """The harness itself: a flag plan run does not have exits 2 with click's usage error."""
    pod = Pod(["dynamo-plan", "plan", "run", "--profile", str(profile_dir)], {}, {})
    pod.argv += ["--model", "m", "--adjustment-intervall", "60"]
    run = run_in_venv(venv_bin, _print_config(pod), tmp_path)
    assert run.returncode == 2 and "No such option" in run.stderr, run.stderr


def test_the_venv_runs_the_wheel_not_the_checkout(venv_bin: Path, tmp_path: Path) -> None:
    where = subprocess.run(
        [venv_bin / "python", "-c", "import dynamo_plan; print(dynamo_plan.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(venv_bin.parent), where
    assert sys.prefix != str(venv_bin.parent)
