"""Every object dynamo-plan writes for a Dynamo release validates against that release's real CRD.

Checked as a structural-schema API server checks it (tests/crd_schema.py: unknown fields, types,
enums, required fields, int-or-string, embedded resources), for each release in
:class:`~dynamo_plan.core.releases.DynamoRelease` (CRDs in tests/data/dynamo/<full version>/):

* DGDRs from ``dgdr create --dynamo-version V`` (with and without the optional flags) and from
  ``dgdr convert FILE --to v1alpha1|v1beta1``;
* DGDs from ``generate-dgd --dynamo-version V`` for vllm, sglang, trtllm and the mocker;
* the DGDR status (every ``/status`` write of ``dgdr run``: Pending, Profiling, Deploying, Ready,
  Failed) and the objects ``dgdr run`` creates, recorded by the loopback API stand-in;
* scaling adapters: dynamo-plan creates none (Dynamo's operator does); the Kubernetes connector
  writes only their ``/scale`` subresource (``KubeClient.scale``), and each version of the
  adapter that write leaves validates.

:func:`test_the_check_catches_an_unknown_field_in_every_rendered_object` shows the check fails as
soon as a rendered object gains a field its CRD does not define.
"""

from __future__ import annotations

import copy
import json
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from dynamo_plan.core.releases import NEWEST_RELEASE, DynamoRelease
from tests.conftest import CliResult, run_cli
from tests.crd_schema import crd_errors, served_versions
from tests.k8s_standin import StandIn

RELEASES = list(DynamoRelease)
BACKENDS = ("vllm", "sglang", "trtllm", "mocker")
MODEL = "meta-llama/Llama-3.1-8B-Instruct"
DGDR_KIND = "DynamoGraphDeploymentRequest"
#: profile.json of the shared H200 profile: prefill TP 1, decode TP 2
PROFILE_META = {
    "model": MODEL,
    "system": "h200_sxm",
    "parallelism": {
        "prefill": {"tp": 1, "gpus_per_engine": 1},
        "decode": {"tp": 2, "gpus_per_engine": 2},
    },
}
#: a DGDR as Dynamo 0.9's CRD and planner guide spell it (the input of generate-dgd)
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
    profilerImage: nvcr.io/nvidia/ai-dynamo/vllm-runtime:0.9.0
    config:
      sla: {{isl: 3000, osl: 150, ttft: 200, itl: 20.5}}
      planner:
        plannerMinEndpoint: 2
        adjustmentInterval: 60
"""


def assert_conforms(obj: Any, release: DynamoRelease) -> None:
    """``obj`` (a custom resource) is what ``release``'s API server accepts as it is."""
    assert isinstance(obj, dict), obj
    errors = crd_errors(obj, release.full_version)
    where = f"{obj.get('kind')} {obj.get('apiVersion')} {(obj.get('metadata') or {}).get('name')}"
    assert errors == [], f"Dynamo {release.full_version} refuses {where}:\n" + "\n".join(errors)


def _custom(objects: list[Any]) -> list[dict[str, Any]]:
    """The custom resources (Dynamo's ``nvidia.com`` kinds) of a manifest."""
    return [o for o in objects if isinstance(o, dict) and o["apiVersion"].startswith("nvidia.com/")]


def _options(*command: str) -> set[str]:
    """The option names of a CLI (sub)command, e.g. ``_options("dgdr", "create")``."""
    from dynamo_plan.cli.app import load_command

    cmd = load_command(command[0])
    for name in command[1:]:
        cmd = cmd.commands[name]
    return {opt for param in cmd.params for opt in param.opts}


def _ok(result: CliResult) -> str:
    assert result.exit_code == 0, result.stderr
    return result.stdout


def _one_line_error(result: CliResult) -> bool:
    """Refused as bad input (1) or a usage error (2), in one line."""
    return result.exit_code in (1, 2) and len(result.stderr.strip().splitlines()) == 1


# -- DGDRs: dgdr create and dgdr convert ---------------------------------------------------------

#: optional ``dgdr create`` flags, each used where the command has it
EXTRAS: dict[str, tuple[str, ...]] = {
    "--offline": ("--offline", "--system", "h200_sxm"),
    "--auto-apply": ("--auto-apply",),
    "--workers-image": ("--workers-image", "nvcr.io/nvidia/ai-dynamo/vllm-runtime:x"),
    "--namespace": ("--namespace", "serving"),
}


def _create_args(backend: str, release: DynamoRelease | None, *extra: str) -> list[str]:
    """``dgdr create`` as issue 13's interface names it (plus ``--name`` / ``--profiler-image``
    while the command still asks for them)."""
    have = _options("dgdr", "create")
    args = ["dgdr", "create", "--model", MODEL, "--backend", backend]
    args += ["--isl", "3000", "--osl", "150", "--ttft", "200", "--itl", "20"]
    if release is not None:
        args += ["--dynamo-version", release.value]
    if "--name" in have:
        args += ["--name", "llama-8b"]
    if "--profiler-image" in have:
        args += ["--profiler-image", "nvcr.io/nvidia/ai-dynamo/vllm-runtime:x"]
    return args + list(extra)


def _created(backend: str, release: DynamoRelease | None, *extra: str) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(_ok(run_cli(*_create_args(backend, release, *extra))))]
    assert len(docs) == 1
    doc: dict[str, Any] = docs[0]
    return doc


def _accepted_extras(release: DynamoRelease) -> list[str]:
    """The optional flags (with values) ``create`` takes for ``release``: a flag the release's
    DGDR has no field for (v1beta1 has no workers image) may be refused, in one line; no other."""
    have = _options("dgdr", "create")
    accepted: list[str] = []
    refused: set[str] = set()
    for flag, args in EXTRAS.items():
        if flag not in have:
            continue
        result = run_cli(*_create_args("vllm", release, *args))
        if result.exit_code != 0:
            assert _one_line_error(result), result.stderr
            refused.add(flag)
            continue
        assert_conforms(yaml.safe_load(result.stdout), release)
        accepted += args
    assert refused <= ({"--workers-image"} if release is DynamoRelease.v1_5 else set())
    return accepted


@pytest.fixture(scope="module")
def extras() -> dict[DynamoRelease, list[str]]:
    """Per release, the optional flags ``create`` takes (each one checked on its own)."""
    return {release: _accepted_extras(release) for release in RELEASES}


@pytest.mark.parametrize("backend", ("vllm", "sglang", "trtllm"))
@pytest.mark.parametrize("release", RELEASES, ids=str)
def test_dgdr_create_writes_what_the_release_accepts(
    backend: str, release: DynamoRelease, extras: dict[DynamoRelease, list[str]]
) -> None:
    """Plain and with every optional flag the release takes: what ``create`` writes validates."""
    doc = _created(backend, release)
    assert doc["kind"] == DGDR_KIND and doc["apiVersion"] == release.api_version
    assert_conforms(doc, release)
    full = _created(backend, release, *extras[release])
    assert_conforms(full, release)
    assert full != doc


@pytest.mark.parametrize("release", RELEASES, ids=str)
def test_dgdr_create_with_the_mocker(release: DynamoRelease) -> None:
    """0.9 and 1.5 have a mocker switch (``useMocker``; ``features.mocker``); 0.6 has none: the
    DGDR either leaves it out or ``create`` says in one line it cannot be written."""
    result = run_cli(*_create_args("vllm", release, "--use-mocker"))
    if release is DynamoRelease.v0_6 and result.exit_code != 0:
        assert _one_line_error(result), result.stderr
        return
    doc = yaml.safe_load(_ok(result))
    assert_conforms(doc, release)
    if release is not DynamoRelease.v0_6:
        assert "mocker" in json.dumps(doc["spec"]).lower()


def test_dgdr_create_defaults_to_the_newest_release(tmp_path: Path) -> None:
    doc = _created("vllm", None)
    assert doc["apiVersion"] == NEWEST_RELEASE.api_version
    assert_conforms(doc, NEWEST_RELEASE)
    out = tmp_path / "dgdr.yaml"
    assert _ok(run_cli(*_create_args("vllm", None, "-f", str(out)))) == ""
    assert yaml.safe_load(out.read_text(encoding="utf-8")) == doc


def _convert(doc: dict[str, Any], to: str, tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / f"in-{doc['apiVersion'].split('/')[-1]}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    out = yaml.safe_load(_ok(run_cli("dgdr", "convert", path, "--to", to)))
    assert isinstance(out, dict) and out["apiVersion"] == f"nvidia.com/{to}"
    return out


@pytest.mark.parametrize("release", RELEASES, ids=str)
def test_dgdr_convert_writes_what_a_server_of_both_versions_accepts(
    release: DynamoRelease, tmp_path: Path
) -> None:
    """``convert`` turns release ``release``'s DGDR into the other apiVersion; Dynamo 1.5 serves
    both, so both spellings (and the way back) must validate there."""
    both = DynamoRelease.v1_5
    doc = _created("vllm", release, "--offline", "--system", "h200_sxm")
    to = "v1alpha1" if doc["apiVersion"].endswith("v1beta1") else "v1beta1"
    back = "v1beta1" if to == "v1alpha1" else "v1alpha1"
    there = _convert(doc, to, tmp_path)
    assert_conforms(there, both)
    assert_conforms(_convert(there, back, tmp_path), both)


def test_dgdr_convert_of_a_dynamo_09_dgdr(tmp_path: Path) -> None:
    doc = yaml.safe_load(DGDR_TEXT.format(backend="sglang"))
    assert_conforms(doc, DynamoRelease.v0_9)
    assert_conforms(_convert(doc, "v1beta1", tmp_path), DynamoRelease.v1_5)


# -- DGDs: generate-dgd for each backend and release ---------------------------------------------


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(directory of DGDR files ``<backend>.yaml``, profile dir: the shared H200 profile)."""
    root = tmp_path_factory.mktemp("conformance")
    profile = root / "profile"
    shared = Path(__file__).resolve().parent / "data" / "profiles"
    shutil.copytree(shared / "h200_llama3.1-8b-fp8_tp1p_tp1d", profile)
    (profile / "profile.json").write_text(json.dumps(PROFILE_META), encoding="utf-8")
    for backend in ("vllm", "sglang", "trtllm"):
        (root / f"{backend}.yaml").write_text(DGDR_TEXT.format(backend=backend), encoding="utf-8")
    return root, profile


def _generate(
    inputs: tuple[Path, Path], backend: str, release: DynamoRelease, *extra: str
) -> CliResult:
    root, profile = inputs
    dgdr = root / ("vllm.yaml" if backend == "mocker" else f"{backend}.yaml")
    args: list[str | Path] = ["generate-dgd", "--dgdr", dgdr, "--profile", profile]
    args += ["--dynamo-version", release.value, *extra]
    return run_cli(*args, *(["--mocker"] if backend == "mocker" else []))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("release", RELEASES, ids=str)
def test_generate_dgd_renders_what_the_release_accepts(
    inputs: tuple[Path, Path], backend: str, release: DynamoRelease
) -> None:
    result = _generate(inputs, backend, release)
    if backend == "mocker" and release is DynamoRelease.v0_6 and result.exit_code != 0:
        assert _one_line_error(result), result.stderr  # 0.6 has no mocker: said in one line
        return
    objects = list(yaml.safe_load_all(_ok(result)))
    custom = _custom(objects)
    dgds = [o for o in custom if o["kind"] == "DynamoGraphDeployment"]
    assert len(dgds) == 1 and dgds[0]["apiVersion"] == release.api_version
    served = {(s.kind, s.api_version) for s in served_versions(release.full_version)}
    for obj in custom:
        assert (obj["kind"], obj["apiVersion"]) in served
        assert_conforms(obj, release)


@pytest.mark.parametrize("release", RELEASES, ids=str)
def test_generate_dgd_without_planner_renders_what_the_release_accepts(
    inputs: tuple[Path, Path], release: DynamoRelease
) -> None:
    objects = list(yaml.safe_load_all(_ok(_generate(inputs, "sglang", release, "--no-planner"))))
    assert [o["kind"] for o in objects] == ["DynamoGraphDeployment"]
    assert_conforms(objects[0], release)


def test_the_check_catches_an_unknown_field_in_every_rendered_object(
    inputs: tuple[Path, Path],
) -> None:
    """A field the CRD does not define, at the top of ``spec`` or deep inside a component, fails
    :func:`assert_conforms` (the check every test above relies on)."""
    for release in (DynamoRelease.v0_9, DynamoRelease.v1_5):
        for obj in _custom(list(yaml.safe_load_all(_ok(_generate(inputs, "vllm", release))))):
            top = copy.deepcopy(obj)
            top["spec"]["notAField"] = True
            with pytest.raises(AssertionError, match=r"spec\.notAField: unknown field"):
                assert_conforms(top, release)
            deep = copy.deepcopy(obj)
            parts = deep["spec"].get("components") or list(deep["spec"]["services"].values())
            parts[0]["replicaz"] = 1
            with pytest.raises(AssertionError, match=r"replicaz: unknown field"):
                assert_conforms(deep, release)
            meta = copy.deepcopy(obj)
            meta["metadata"]["labelz"] = {}
            with pytest.raises(AssertionError, match=r"metadata\.labelz: unknown field"):
                assert_conforms(meta, release)
        dgdr = _created("vllm", release)
        dgdr["spec"]["deployMocker"] = False  # the interim spelling no released CRD defines
        with pytest.raises(AssertionError, match=r"spec\.deployMocker: unknown field"):
            assert_conforms(dgdr, release)


# -- dgdr run: the DGDR status and the objects it creates ----------------------------------------


@contextmanager
def _standin(release: DynamoRelease) -> Iterator[StandIn]:
    """The loopback API stand-in serving ``release``'s CRDs, accepting every write as sent (so
    this test, not the stand-in, names what does not conform), the DGDR CRD installed."""
    server = StandIn(release=release.value, validate=False)
    server.install_crd()
    thread = threading.Thread(target=server.httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        thread.join(timeout=5)


def _written(server: StandIn) -> list[dict[str, Any]]:
    """Every version of every custom resource the client wrote (the stand-in's watch log), the
    status of objects other than the DGDR left out (the operator writes those, not the client)."""
    out = []
    for _rv, _event, key, obj in server.store.events:
        if key[0] != "nvidia.com":
            continue
        body = copy.deepcopy(obj)
        if body["kind"] != DGDR_KIND:
            body.pop("status", None)
        out.append(body)
    return out


def _ready_when_created(server: StandIn, name: str, stop: threading.Event) -> None:
    """Play the operator: mark DGD ``name`` Ready once it exists."""
    while not stop.is_set():
        if server.get("dynamographdeployments", "team", name) is not None:
            server.set_condition("dynamographdeployments", "team", name, "Ready", "True")
            return
        stop.wait(0.02)


@pytest.mark.parametrize(
    ("auto_apply", "ttft"), [(False, "200"), (True, "200"), (False, "0.001")],
    ids=["ready", "auto-apply", "failed"],
)  # fmt: skip
@pytest.mark.parametrize("release", RELEASES, ids=str)
def test_dgdr_run_status_and_objects_are_what_the_release_accepts(
    release: DynamoRelease, auto_apply: bool, ttft: str, tmp_path: Path
) -> None:
    from dynamo_plan.adapters.kubernetes import KubeClient
    from dynamo_plan.errors import DynamoPlanError
    from dynamo_plan.profiler.workflow import run_dgdr

    extra = ["--offline", "--system", "h200_sxm"] + (["--auto-apply"] if auto_apply else [])
    args = _create_args("vllm", release, *extra)
    args[args.index("--ttft") + 1] = ttft
    dgdr = tmp_path / "dgdr.yaml"
    dgdr.write_text(_ok(run_cli(*args)), encoding="utf-8")
    name = yaml.safe_load(dgdr.read_text(encoding="utf-8"))["metadata"]["name"]
    with _standin(release) as server:
        kube = KubeClient(server.kubeconfig(tmp_path / "kubeconfig", "team"), backoff_s=0.01)
        stop = threading.Event()
        operator = threading.Thread(target=_ready_when_created, args=(server, name, stop))
        operator.start()
        failed = False
        try:
            run_dgdr(dgdr, kube.connect(), None, timeout_s=20, poll_s=0.05)
        except DynamoPlanError:
            failed = True
        finally:
            stop.set()
            operator.join(timeout=5)
        written = _written(server)
    assert failed == (ttft == "0.001")
    dgdrs = [o for o in written if o["kind"] == DGDR_KIND]
    states = [o.get("status") for o in dgdrs if o.get("status")]
    assert len(states) >= 3  # Pending, Profiling, then Ready or Failed
    assert {o["apiVersion"] for o in dgdrs} == {release.api_version}
    if auto_apply:
        assert "DynamoGraphDeployment" in {o["kind"] for o in written}
    for obj in written:
        assert_conforms(obj, release)


# -- scaling adapters: the planner writes only their /scale subresource ---------------------------


@pytest.mark.parametrize(
    ("release", "version"),
    [(DynamoRelease.v0_9, "v1alpha1"), (DynamoRelease.v1_5, "v1alpha1"),
     (DynamoRelease.v1_5, "v1beta1")],
    ids=str,
)  # fmt: skip
def test_scaling_an_adapter_leaves_what_the_release_accepts(
    release: DynamoRelease, version: str, tmp_path: Path
) -> None:
    """An adapter as Dynamo's operator creates it, scaled through ``/scale`` as the Kubernetes
    connector does (``KubeClient.scale``): every version stored validates."""
    from dynamo_plan.adapters.kubernetes import SCALING_ADAPTERS, KubeClient

    info = SCALING_ADAPTERS[version]
    ref = (
        {"serviceName": "VllmDecodeWorker"}
        if version == "v1alpha1"
        else {"componentName": "decode"}
    )
    adapter = {
        "apiVersion": info.api_version,
        "kind": info.kind,
        "metadata": {"name": "llama-8b-decode", "namespace": "team"},
        "spec": {"dgdRef": {"name": "llama-8b", **ref}, "replicas": 1},
    }
    assert_conforms(adapter, release)
    with _standin(release) as server:
        kube = KubeClient(server.kubeconfig(tmp_path / "kubeconfig", "team"), backoff_s=0.01)
        kube.connect()
        assert kube.create(info, "team", adapter) is not None
        scale = kube.scale(info, "team", "llama-8b-decode", replicas=3, field_manager="planner")
        assert scale is not None and scale["spec"]["replicas"] == 3
        written = _written(server)
    assert [o["spec"]["replicas"] for o in written] == [1, 3]
    for obj in written:
        assert_conforms(obj, release)
