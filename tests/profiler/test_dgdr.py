"""The DGDR reader: the profiling intent, and one precise error per broken field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dynamo_plan.errors import InputError
from dynamo_plan.profiler.dgdr import read_dgdr

DGDR = {
    "apiVersion": "nvidia.com/v1alpha1",
    "kind": "DynamoGraphDeploymentRequest",
    "metadata": {"name": "llama"},
    "spec": {
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "backend": "vllm",
        "profilingConfig": {
            "profilerImage": "nvcr.io/nvidia/ai-dynamo/profiler:0.6",
            "config": {
                "sla": {"isl": 3000, "osl": 150, "ttft": 200.0, "itl": 20},
                "sweep": {"useAiConfigurator": True, "aicSystem": "h200_sxm",
                          "aicHfId": "RedHatAI/Llama-3.1-8B-Instruct-FP8"},
            },
        },
    },
}  # fmt: skip


def _write(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "dgdr.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_reads_intent(tmp_path: Path) -> None:
    intent = read_dgdr(_write(tmp_path, DGDR))
    assert (intent.model, intent.backend, intent.system) == (
        "meta-llama/Llama-3.1-8B-Instruct", "vllm", "h200_sxm",
    )  # fmt: skip
    assert (intent.isl, intent.osl, intent.ttft_ms, intent.itl_ms) == (3000, 150, 200.0, 20.0)
    assert intent.estimator_model == "RedHatAI/Llama-3.1-8B-Instruct-FP8"


def _broken(path: str, value: object) -> dict:
    import copy

    doc = copy.deepcopy(DGDR)
    *parents, last = path.split(".")
    node: dict = doc
    for key in parents:
        node = node[key]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("spec.model", None, ":5: spec.model: required field missing"),
        (
            "spec.backend",
            "tgi",
            ":6: spec.backend: expected one of vllm, sglang, trtllm, got 'tgi'",
        ),
        ("spec.profilingConfig.config.sla", None, ":9: spec.profilingConfig.config.sla: required"),
        ("spec.profilingConfig.config.sla.isl", -5, "sla.isl: must be > 0 tokens, got -5"),
        ("spec.profilingConfig.config.sla.osl", 1.5, "sla.osl: expected an integer, got 1.5"),
        ("spec.profilingConfig.config.sla.ttft", "fast", "sla.ttft: expected a number, got 'fast'"),
        ("spec.profilingConfig.config.sla.itl", 0, "sla.itl: must be > 0 ms, got 0"),
        ("spec.profilingConfig.config.sweep.aicSystem", 7, "aicSystem: expected a string, got 7"),
        (
            "spec.profilingConfig",
            "oops",
            ":8: spec.profilingConfig: expected an object, got 'oops'",
        ),
        ("kind", "DynamoGraphDeployment", ":2: kind: expected 'DynamoGraphDeploymentRequest'"),
    ],
)
def test_broken_fields(tmp_path: Path, path: str, value: object, message: str) -> None:
    """The first problem, as ``FILE:LINE: field.path: message`` (the schema's wording)."""
    file = _write(tmp_path, _broken(path, value))
    with pytest.raises(InputError) as e:
        read_dgdr(file)
    assert str(e.value).startswith(f"{file}:") and message in str(e.value)


def test_a_dgdr_that_is_not_utf8_is_an_input_error(tmp_path: Path) -> None:
    """Issue 11: a binary or UTF-16 file was a UnicodeDecodeError, not one InputError line."""
    path = tmp_path / "dgdr.yaml"
    path.write_bytes("kind: DynamoGraphDeploymentRequest\n".encode("utf-16"))
    with pytest.raises(InputError, match=r"dgdr.yaml:1: not UTF-8 text"):
        read_dgdr(path)


def test_unreadable_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        read_dgdr(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("spec:\n  model: [unclosed\n")
    with pytest.raises(InputError, match=r"bad.yaml:\d+: invalid YAML"):
        read_dgdr(bad)
    bad.write_text("- a list\n")
    with pytest.raises(InputError, match=r"bad\.yaml:1: expected an object, got a list"):
        read_dgdr(bad)


DGDRS = Path(__file__).parents[1] / "data" / "dgdrs"


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        ("v1alpha1_0.6_snake.yaml", ("Qwen/Qwen3-32B", "trtllm", 3000, 150, 500.0, 30.0)),
        ("v1alpha1_0.9_camel.yaml", ("Qwen/Qwen3-32B", "trtllm", 3000, 150, 500.0, 30.0)),
        ("v1beta1_1.5.yaml", ("Qwen/Qwen3-0.6B", "vllm", 3000, 300, 200.0, 20.0)),
    ],
)
def test_every_spelling_gives_the_intent(file: str, expected: tuple[object, ...]) -> None:
    intent = read_dgdr(DGDRS / file)
    got = (intent.model, intent.backend, intent.isl, intent.osl, intent.ttft_ms, intent.itl_ms)
    assert got == expected
    assert intent.use_ai_configurator and intent.system == "h200_sxm"


def test_snake_and_camel_give_the_same_intent() -> None:
    snake = read_dgdr(DGDRS / "v1alpha1_0.6_snake.yaml")
    camel = read_dgdr(DGDRS / "v1alpha1_0.9_camel.yaml")
    assert snake == camel
    assert snake.backend_version == "0.20.0" and snake.hf_id == "Qwen/Qwen3-32B"


def test_v1beta1_without_ttft_names_the_field(tmp_path: Path) -> None:
    doc = yaml.safe_load((DGDRS / "v1beta1_1.5.yaml").read_text())
    doc["spec"]["sla"] = {"e2eLatency": 3000.0}
    file = _write(tmp_path, doc)
    with pytest.raises(InputError, match=r"dgdr.yaml:\d+: spec.sla.ttft: .*e2eLatency alone"):
        read_dgdr(file)
