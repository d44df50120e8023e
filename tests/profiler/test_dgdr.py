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
        ("spec.model", None, "missing 'spec.model'; expected the model id"),
        ("spec.backend", "tgi", "'spec.backend' is 'tgi'; expected one of vllm, sglang, trtllm"),
        ("spec.profilingConfig.config.sla", None, "missing 'spec.profilingConfig.config.sla'"),
        (
            "spec.profilingConfig.config.sla.isl",
            -5,
            "'spec.profilingConfig.config.sla.isl' must be a positive integer",
        ),
        (
            "spec.profilingConfig.config.sla.osl",
            1.5,
            "'spec.profilingConfig.config.sla.osl' must be a positive integer",
        ),
        (
            "spec.profilingConfig.config.sla.ttft",
            "fast",
            "'spec.profilingConfig.config.sla.ttft' must be a positive number",
        ),
        (
            "spec.profilingConfig.config.sla.itl",
            0,
            "'spec.profilingConfig.config.sla.itl' must be a positive number",
        ),
        (
            "spec.profilingConfig.config.sweep.aicSystem",
            7,
            "'spec.profilingConfig.config.sweep.aicSystem' must be a non-empty string",
        ),
        ("spec.profilingConfig", "oops", "'spec.profilingConfig' must be a mapping, got str"),
        ("kind", "DynamoGraphDeployment", "'kind' is 'DynamoGraphDeployment'"),
    ],
)
def test_broken_fields(tmp_path: Path, path: str, value: object, message: str) -> None:
    file = _write(tmp_path, _broken(path, value))
    with pytest.raises(InputError) as e:
        read_dgdr(file)
    assert str(e.value).startswith(f"{file}: ") and message in str(e.value)


def test_a_dgdr_that_is_not_utf8_is_an_input_error(tmp_path: Path) -> None:
    """Issue 11: a binary or UTF-16 file was a UnicodeDecodeError, not one InputError line."""
    path = tmp_path / "dgdr.yaml"
    path.write_bytes("kind: DynamoGraphDeploymentRequest\n".encode("utf-16"))
    with pytest.raises(InputError, match=r"dgdr.yaml:1: not UTF-8 text .*UTF-16\?"):
        read_dgdr(path)


def test_unreadable_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        read_dgdr(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("spec:\n  model: [unclosed\n")
    with pytest.raises(InputError, match=r"bad.yaml:\d+: invalid YAML"):
        read_dgdr(bad)
    bad.write_text("- a list\n")
    with pytest.raises(InputError, match="expected a DynamoGraphDeploymentRequest mapping"):
        read_dgdr(bad)
