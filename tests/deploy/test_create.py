"""``build_dgdr`` / ``write_dgdr``: what they write validates with our schema and with the real CRD
of the release written for (tests/crd_schema.py, checked as an API server checks it), carries
only fields that say something, and reads back to the same request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo_plan.core.releases import DynamoRelease
from dynamo_plan.deploy.create import build_dgdr, default_name, dump_dgdr, write_dgdr
from dynamo_plan.deploy.dgdr import validate_text
from dynamo_plan.deploy.dgdr_model import interpret, read_dgdr_file
from dynamo_plan.errors import InputError, UsageError
from tests.crd_schema import crd_errors

NAME = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=30)
DGDRS = Path(__file__).parents[1] / "data" / "dgdrs"


def _kwargs(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict(
        name="llama", model="meta-llama/Llama-3.1-8B-Instruct", backend="vllm", isl=3000,
        osl=150, ttft_ms=200.0, itl_ms=20.0, profiler_image="nvcr.io/nvidia/profiler:0.6",
    )  # fmt: skip
    return base | over


@settings(max_examples=25, deadline=None)
@given(
    release=st.sampled_from(list(DynamoRelease)),
    name=NAME,
    model=TEXT,
    backend=st.sampled_from(["vllm", "sglang", "trtllm"]),
    isl=st.integers(1, 10**6),
    osl=st.integers(1, 10**6),
    ttft=st.floats(min_value=1e-3, max_value=1e6, allow_nan=False),
    itl=st.floats(min_value=1e-3, max_value=1e6, allow_nan=False),
    image=TEXT,
    system=st.one_of(st.none(), st.sampled_from(["h200_sxm", "h100_sxm", "b200_sxm"])),
    auto_apply=st.booleans(),
    use_mocker=st.booleans(),
    workers_image=st.one_of(st.none(), TEXT),
    namespace=st.one_of(st.none(), NAME),
)
def test_created_dgdr_validates(
    release: DynamoRelease, name: str, model: str, backend: str, isl: int, osl: int,
    ttft: float, itl: float, image: str, system: str | None, auto_apply: bool, use_mocker: bool,
    workers_image: str | None, namespace: str | None,
) -> None:  # fmt: skip
    use_mocker = use_mocker and release is not DynamoRelease.v0_6
    workers_image = None if release is DynamoRelease.v1_5 else workers_image
    doc = build_dgdr(
        name=name, model=model, backend=backend, isl=isl, osl=osl, ttft_ms=ttft, itl_ms=itl,
        profiler_image=image, offline=system is not None, system=system, auto_apply=auto_apply,
        use_mocker=use_mocker, workers_image=workers_image, namespace=namespace, release=release,
    )  # fmt: skip
    text = dump_dgdr(doc)
    report = validate_text(text, "created.yaml")
    assert report.valid and report.warnings == [], report.errors
    reread = yaml.safe_load(text)
    assert reread == doc
    assert reread["apiVersion"] == release.api_version
    assert crd_errors(reread, release.value) == []
    spec, _ = interpret(reread)
    assert (spec.isl, spec.osl, spec.ttft_ms, spec.itl_ms) == (isl, osl, ttft, itl)
    assert (spec.model, spec.backend, spec.mocker) == (model, backend, use_mocker)
    assert (spec.auto_apply, spec.use_ai_configurator) == (auto_apply, system is not None)
    assert spec.aic_system == system and spec.api_version == release.api_version
    body = reread["spec"]
    if release is DynamoRelease.v1_5:
        assert body.get("searchStrategy") == (None if system else "thorough")
        assert body.get("autoApply") is (None if auto_apply else False)  # default true
    else:
        assert body.get("autoApply") is (True if auto_apply else None)  # default false
        assert body.get("useMocker") is (True if use_mocker else None)
        assert "deployMocker" not in body
        sweep = body["profilingConfig"]["config"].get("sweep")
        if system is None:
            assert sweep is None
        elif release is DynamoRelease.v0_6:
            assert sweep == {"use_ai_configurator": True, "aic_system": system, "aic_hf_id": model}
        else:
            assert sweep == {"useAiConfigurator": True, "aicSystem": system, "aicHfId": model}


@pytest.mark.parametrize("release", list(DynamoRelease))
def test_defaults_are_not_spelled_out(release: DynamoRelease) -> None:
    doc = build_dgdr(**_kwargs(name=None, profiler_image=None, release=release))
    assert doc["metadata"] == {"name": "llama-3-1-8b-instruct"}
    spec = doc["spec"]
    if release is DynamoRelease.v1_5:
        assert set(spec) == {"model", "backend", "sla", "workload", "searchStrategy", "features",
                             "autoApply"}  # fmt: skip
    else:
        assert set(spec) == {"model", "backend", "profilingConfig"}
        image = spec["profilingConfig"]["profilerImage"]
        assert image == f"nvcr.io/nvidia/ai-dynamo/vllm-runtime:{release.full_version}"
    assert crd_errors(doc, release.value) == []


@pytest.mark.parametrize("release", [DynamoRelease.v0_9, DynamoRelease.v1_5])
@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"ttft_ms": 0.0}, "--ttft: must be > 0 ms, got 0"),
        ({"itl_ms": -5.0}, "--itl: must be > 0 ms, got -5"),
        ({"isl": 0}, "--isl: must be > 0 tokens, got 0"),
        ({"osl": -1}, "--osl: must be > 0 tokens, got -1"),
        ({"backend": "vlm"}, "--backend: expected one of "),
        ({"name": "Llama_8B"}, "--name: must be a lowercase RFC 1123 name"),
        ({"model": ""}, "--model: must not be empty"),
        ({"profiler_image": ""}, "--profiler-image: must not be empty"),
        ({"ttft_ms": float("inf")}, "--ttft: must be a finite number, got .inf"),
    ],
)
def test_bad_values_name_the_flag(
    release: DynamoRelease, over: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputError) as e:
        build_dgdr(**_kwargs(**over, release=release))
    assert str(e.value).startswith(message)


def test_offline_and_system_go_together() -> None:
    with pytest.raises(UsageError, match="--offline needs --system"):
        build_dgdr(**_kwargs(offline=True))
    with pytest.raises(UsageError, match="add --offline"):
        build_dgdr(**_kwargs(system="h200_sxm"))


def test_flags_a_release_cannot_write_are_refused() -> None:
    with pytest.raises(UsageError, match=r"0\.6's DGDR has no mocker switch"):
        build_dgdr(**_kwargs(use_mocker=True, release=DynamoRelease.v0_6))
    with pytest.raises(UsageError, match=r"v1beta1 DGDR .* has no workers image"):
        build_dgdr(**_kwargs(workers_image="img", release=DynamoRelease.v1_5))


def test_default_name_is_an_rfc1123_name() -> None:
    assert default_name("Qwen/Qwen3-0.6B") == "qwen3-0-6b"
    assert default_name("meta-llama/Llama-3.1-8B-Instruct") == "llama-3-1-8b-instruct"
    assert default_name("///") == "dgdr"


@pytest.mark.parametrize("source", sorted(DGDRS.glob("*.yaml")), ids=lambda p: p.stem)
@pytest.mark.parametrize("release", list(DynamoRelease))
def test_convert_writes_what_the_release_accepts_and_names_the_rest(
    source: Path, release: DynamoRelease
) -> None:
    spec, _ = read_dgdr_file(source)
    doc, dropped = write_dgdr(spec, release)
    assert crd_errors(doc, release.value) == []
    again, _ = interpret(doc)
    assert (again.model, again.isl, again.osl) == (spec.model, spec.isl, spec.osl)
    assert (again.ttft_ms, again.itl_ms) == (spec.ttft_ms, spec.itl_ms)
    assert again.use_ai_configurator == spec.use_ai_configurator
    assert again.aic_system == spec.aic_system
    assert again.auto_apply == spec.auto_apply
    if spec.is_v1beta1 and release is not DynamoRelease.v1_5:
        assert "spec.workload.requestRate: v1alpha1 has no such field" in dropped
        assert "spec.hardware.totalGpus: v1alpha1 has no such field" in dropped
    if not spec.is_v1beta1 and release is DynamoRelease.v1_5:
        assert any(d.startswith(spec.path_of("aic_backend_version")) for d in dropped)
        assert any(d.startswith("spec.deploymentOverrides.workersImage") for d in dropped)
    if spec.api_version == doc["apiVersion"] and release is spec.release:
        assert dropped == []


def test_snake_and_camel_sources_convert_alike() -> None:
    snake, _ = read_dgdr_file(DGDRS / "v1alpha1_0.6_snake.yaml")
    camel, _ = read_dgdr_file(DGDRS / "v1alpha1_0.9_camel.yaml")
    for release in DynamoRelease:
        assert write_dgdr(snake, release)[0] == write_dgdr(camel, release)[0]
