"""``build_dgdr``: whatever it writes validates with our schema and the real CRD's schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator

from dynamo_plan.deploy.create import build_dgdr, dump_dgdr
from dynamo_plan.deploy.dgdr import validate_text
from dynamo_plan.errors import InputError, UsageError
from tests.deploy.crd import crd_schema, pruned_fields

NAME = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=30)


def _kwargs(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict(
        name="llama", model="meta-llama/Llama-3.1-8B-Instruct", backend="vllm", isl=3000,
        osl=150, ttft_ms=200.0, itl_ms=20.0, profiler_image="nvcr.io/nvidia/profiler:0.6",
    )  # fmt: skip
    return base | over


@settings(max_examples=60, deadline=None)
@given(
    name=NAME,
    model=TEXT,
    backend=st.sampled_from(["vllm", "sglang", "trtllm"]),
    isl=st.integers(1, 10**6),
    osl=st.integers(1, 10**6),
    ttft=st.floats(min_value=1e-3, max_value=1e6, allow_nan=False),
    itl=st.floats(min_value=1e-3, max_value=1e6, allow_nan=False),
    image=TEXT,
    system=st.one_of(st.none(), TEXT),
    auto_apply=st.booleans(),
    use_mocker=st.booleans(),
    workers_image=st.one_of(st.none(), TEXT),
    namespace=st.one_of(st.none(), NAME),
)
def test_created_dgdr_validates(
    shared_data: Path, name: str, model: str, backend: str, isl: int, osl: int, ttft: float,
    itl: float, image: str, system: str | None, auto_apply: bool, use_mocker: bool,
    workers_image: str | None, namespace: str | None,
) -> None:  # fmt: skip
    doc = build_dgdr(
        name=name, model=model, backend=backend, isl=isl, osl=osl, ttft_ms=ttft, itl_ms=itl,
        profiler_image=image, offline=system is not None, system=system, auto_apply=auto_apply,
        use_mocker=use_mocker, workers_image=workers_image, namespace=namespace,
    )  # fmt: skip
    text = dump_dgdr(doc)
    report = validate_text(text, "created.yaml")
    assert report.valid and report.warnings == [], report.errors
    reread = yaml.safe_load(text)
    assert reread == doc
    crd = crd_schema(shared_data)
    assert [e.message for e in Draft7Validator(crd).iter_errors(reread)] == []
    assert pruned_fields(reread, crd) == []
    sla = reread["spec"]["profilingConfig"]["config"]["sla"]
    assert (sla["isl"], sla["osl"], sla["ttft"], sla["itl"]) == (isl, osl, ttft, itl)
    sweep = reread["spec"]["profilingConfig"]["config"].get("sweep")
    if system is None:
        assert sweep is None
    else:
        assert sweep == {"useAiConfigurator": True, "aicSystem": system, "aicHfId": model}


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"ttft_ms": 0.0}, "--ttft: must be > 0 ms, got 0"),
        ({"itl_ms": -5.0}, "--itl: must be > 0 ms, got -5"),
        ({"isl": 0}, "--isl: must be > 0 tokens, got 0"),
        ({"osl": -1}, "--osl: must be > 0 tokens, got -1"),
        ({"backend": "vlm"}, "--backend: expected one of vllm, sglang, trtllm, got 'vlm'"),
        ({"name": "Llama_8B"}, "--name: must be a lowercase RFC 1123 name"),
        ({"model": ""}, "--model: must not be empty"),
        ({"profiler_image": ""}, "--profiler-image: must not be empty"),
        ({"ttft_ms": float("inf")}, "--ttft: must be a finite number, got .inf"),
    ],
)
def test_bad_values_name_the_flag(over: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError) as e:
        build_dgdr(**_kwargs(**over))
    assert str(e.value).startswith(message)


def test_offline_and_system_go_together() -> None:
    with pytest.raises(UsageError, match="--offline needs --system"):
        build_dgdr(**_kwargs(offline=True))
    with pytest.raises(UsageError, match="add --offline"):
        build_dgdr(**_kwargs(system="h200_sxm"))
