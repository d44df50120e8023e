"""The DGD of each Dynamo release (``generate-dgd --dynamo-version``) against that release's own
example DGDs and CRD (``tests/data/dynamo/<ver>/{examples,crds}``), the Planner's image, and
names that cannot collide between two DGDs of one namespace.

The expected worker arguments, commands, working directories and secrets are read from Dynamo's
example files, not written here: a template that drifts from its release's example fails.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from dynamo_plan import __version__
from dynamo_plan.adapters.profile_files import load_profile
from dynamo_plan.core.releases import DynamoRelease
from dynamo_plan.deploy import dgd_shapes
from dynamo_plan.deploy.render import MODEL_FLAGS, TP_FLAG, planner_image, render
from dynamo_plan.errors import InputError
from tests.crd_schema import crd_errors
from tests.deploy.test_render import PROFILE_META, by_kind, dgdr_doc, make_profile_dir

EXAMPLES = Path(__file__).resolve().parent.parent / "data" / "dynamo"
RELEASES = list(DynamoRelease)
#: backend × release pairs that Dynamo ships an example DGD for (no mocker example in 0.6.1)
EXAMPLE_CASES = [
    (b, r)
    for r in RELEASES
    for b in ("vllm", "sglang", "trtllm", "mocker")
    if (EXAMPLES / r.full_version / "examples" / f"{b}_disagg.yaml").exists()
]


@pytest.fixture
def profile_dir(shared_data: Path, tmp_path: Path) -> Path:
    return make_profile_dir(shared_data, tmp_path, PROFILE_META)


def _example(backend: str, release: DynamoRelease) -> dict[str, Any]:
    path = EXAMPLES / release.full_version / "examples" / f"{backend}_disagg.yaml"
    doc: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return doc


def _role_args(args: list[str], backend: str) -> list[str]:
    """Arguments with the model values blanked and the TP flag (which the render sets from the
    profile; some examples leave it to the engine config) removed."""
    out: list[str] = []
    skip = False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg == TP_FLAG.get(backend):
            skip = True
            continue
        out.append("MODEL" if i > 0 and args[i - 1] in MODEL_FLAGS else arg)
    return out


def _secret(dgd: dict[str, Any], comp: dgd_shapes.Component) -> str | None:
    if dgd_shapes.is_v1beta1(dgd):
        refs = [e["secretRef"]["name"] for e in comp.container.get("envFrom", [])]
        return refs[0] if refs else None
    value = comp.body.get("envFromSecret")
    return str(value) if value is not None else None


def _worker_view(dgd: dict[str, Any], backend: str) -> dict[str, dict[str, Any]]:
    """Per role: the command (``python3 -m <module>``), arguments, working directory, secret,
    GPU request and component name, as Dynamo's examples spell them."""
    out: dict[str, dict[str, Any]] = {}
    for role, comp in dgd_shapes.workers(dgd, "example").items():
        c = comp.container
        out[role] = {
            "name": comp.name,
            "command": c.get("command"),
            "args": _role_args(list(c.get("args", [])), backend),
            "workingDir": c.get("workingDir"),
            "secret": _secret(dgd, comp),
            "gpu": "nvidia.com/gpu" in (c.get("resources") or {}).get("limits", {})
            or "gpu" in (comp.body.get("resources") or {}).get("limits", {}),
        }
    return out


@pytest.mark.parametrize(
    ("backend", "release"), EXAMPLE_CASES, ids=[f"{b}-{r.value}" for b, r in EXAMPLE_CASES]
)
def test_workers_as_the_releases_example(
    backend: str, release: DynamoRelease, profile_dir: Path
) -> None:
    example = _example(backend, release)
    doc = dgdr_doc("vllm" if backend == "mocker" else backend)
    out = render(doc, load_profile(profile_dir), mocker=backend == "mocker", release=release)
    dgd = by_kind(out.objects)["DynamoGraphDeployment"]
    assert dgd["apiVersion"] == example["apiVersion"] == release.api_version
    assert ("components" in dgd["spec"]) == ("components" in example["spec"])
    assert _worker_view(dgd, backend) == _worker_view(example, backend)
    for comp in dgd_shapes.components(dgd):  # the engine images are the release's own
        if comp.role != "planner":
            assert comp.container["image"].endswith(f":{release.full_version}"), comp.name


@pytest.mark.parametrize("release", RELEASES, ids=[r.value for r in RELEASES])
@pytest.mark.parametrize("backend", ["vllm", "sglang", "trtllm", "mocker"])
def test_every_object_validates_and_an_unknown_field_is_caught(
    backend: str, release: DynamoRelease, profile_dir: Path
) -> None:
    doc = dgdr_doc("vllm" if backend == "mocker" else backend)
    out = render(doc, load_profile(profile_dir), mocker=backend == "mocker", release=release)
    dgd = by_kind(out.objects)["DynamoGraphDeployment"]
    assert crd_errors(dgd, release.value) == []
    worse = copy.deepcopy(dgd)
    dgd_shapes.workers(worse, out.template)["decode"].body["gpusPerReplica"] = 2
    assert any("gpusPerReplica" in e for e in crd_errors(worse, release.value))


def test_v1beta1_has_no_dynamo_namespace_and_the_planner_reads_dyn_namespace(
    profile_dir: Path,
) -> None:
    out = render(dgdr_doc(), load_profile(profile_dir), release=DynamoRelease.v1_5)
    dgd = by_kind(out.objects)["DynamoGraphDeployment"]
    assert "dynamoNamespace" not in yaml.safe_dump(dgd)
    planner = dgd_shapes.planners(dgd)[0]
    assert "--namespace" not in planner.container["args"]
    old = render(dgdr_doc(), load_profile(profile_dir), release=DynamoRelease.v0_6)
    old_planner = dgd_shapes.planners(by_kind(old.objects)["DynamoGraphDeployment"])[0]
    args = old_planner.container["args"]
    assert args[args.index("--namespace") + 1] == "llama-8b"


def test_planner_image_flag_then_dgdr_then_the_package_version(profile_dir: Path) -> None:
    profile = load_profile(profile_dir)

    def image(out: Any) -> str:
        planner = dgd_shapes.planners(by_kind(out.objects)["DynamoGraphDeployment"])[0]
        return str(planner.container["image"])

    assert image(render(dgdr_doc(), profile)) == f"dynamo-plan:{__version__}"
    assert "latest" not in image(render(dgdr_doc(), profile))
    doc = dgdr_doc(plannerImage="registry.local/dynamo-plan:dgdr")
    out = render(doc, profile)
    assert image(out) == "registry.local/dynamo-plan:dgdr"
    assert not any("plannerImage" in w for w in out.warnings)
    assert "--planner-image" not in str(out.objects)
    flagged = render(doc, profile, planner_image_flag="registry.local/dynamo-plan:flag")
    assert image(flagged) == "registry.local/dynamo-plan:flag"
    with pytest.raises(InputError, match=r"planner\.plannerImage: expected an image reference"):
        render(dgdr_doc(plannerImage=""), profile)


def test_planner_image_of_a_v1beta1_dgdr() -> None:
    doc = {
        "apiVersion": "nvidia.com/v1beta1",
        "kind": "DynamoGraphDeploymentRequest",
        "metadata": {"name": "x"},
        "spec": {"model": "m", "features": {"planner": {"plannerImage": "r/dp:1"}}},
    }
    assert planner_image(doc) == "r/dp:1"
    assert planner_image(doc, "r/dp:flag") == "r/dp:flag"
    assert planner_image(None) == f"dynamo-plan:{__version__}"


@pytest.mark.parametrize("release", RELEASES, ids=[r.value for r in RELEASES])
def test_two_dgds_in_one_namespace_share_no_object(
    release: DynamoRelease, profile_dir: Path
) -> None:
    profile = load_profile(profile_dir)
    first = dgdr_doc()
    second = dgdr_doc()
    second["metadata"]["name"] = "llama-8b-canary"
    names = [
        {(o["kind"], o["metadata"]["name"]) for o in render(doc, profile, release=release).objects}
        for doc in (first, second)
    ]
    assert names[0].isdisjoint(names[1])
    dynamo_helm_names = {"planner-serviceaccount", "planner-role", "planner-binding"}
    assert not {n for _, n in names[0] | names[1]} & (dynamo_helm_names | {"planner-profile-data"})
