"""``dgdr validate`` on the corpus of bad DGDRs: exit code, field path and line per file."""

from __future__ import annotations

from pathlib import Path

import pytest

from dynamo_plan.deploy.dgdr import format_path, validate_text
from dynamo_plan.formats.yaml_lines import line_of, load_documents
from tests.conftest import run_cli

CORPUS = Path(__file__).parent / "bad_dgdrs"
SLA = "spec.profilingConfig.config.sla"

# file stem -> (path of the first finding, its line, whether the file is valid: warnings only)
EXPECTED: dict[str, tuple[str, int, bool]] = {
    "auto_apply_string": ("spec.autoApply", 21, False),
    "bad_api_version": ("apiVersion", 1, False),
    "bad_backend": ("spec.backend", 7, False),
    "bad_backend_case": ("spec.backend", 7, False),
    "bad_kind": ("kind", 2, False),
    "comments_only": ("", 1, False),
    "config_map_ref_without_name": ("spec.profilingConfig.configMapRef.name", 10, False),
    "config_string": ("spec.profilingConfig.config", 10, False),
    "document_is_list": ("", 1, False),
    "document_is_scalar": ("", 1, False),
    "empty_file": ("", 1, False),
    "isl_float": (f"{SLA}.isl", 12, False),
    "isl_zero": (f"{SLA}.isl", 12, False),
    "isl_too_large": (f"{SLA}.isl", 12, False),
    "itl_negative": (f"{SLA}.itl", 15, False),
    "itl_null": (f"{SLA}.itl", 15, False),
    "itl_zero": (f"{SLA}.itl", 15, False),
    "labels_not_strings": ("spec.deploymentOverrides.labels.team", 24, False),
    "missing_backend": ("spec.backend", 5, False),
    # Dynamo's admission webhook refuses it too ("spec.profilingConfig.config is required")
    "missing_config": ("spec.profilingConfig.config", 8, False),
    "missing_itl": (f"{SLA}.itl", 11, False),
    "missing_model": ("spec.model", 5, False),
    "missing_name": ("metadata.name", 3, False),
    "missing_profiler_image": ("spec.profilingConfig.profilerImage", 8, False),
    "missing_profiling_config": ("spec.profilingConfig", 5, False),
    "missing_sla": (SLA, 10, False),
    "missing_spec": ("spec", 1, False),
    "model_number": ("spec.model", 6, False),
    "multi_doc_second_bad": (f"{SLA}.ttft", 36, False),
    "name_uppercase": ("metadata.name", 4, False),
    "not_utf8": ("", 4, False),
    "osl_negative": (f"{SLA}.osl", 13, False),
    "osl_quoted": (f"{SLA}.osl", 13, False),
    "planner_min_endpoint_zero": (
        "spec.profilingConfig.config.planner.plannerMinEndpoint",
        20,
        False,
    ),
    "resources_bad_quantity": ("spec.profilingConfig.resources.limits.gpu", 12, False),
    "sla_list": (SLA, 11, False),
    "spec_list": ("spec", 5, False),
    "tolerations_object": ("spec.profilingConfig.tolerations", 10, False),
    "ttft_inf": (f"{SLA}.ttft", 14, False),
    "ttft_negative": (f"{SLA}.ttft", 14, False),
    "ttft_string": (f"{SLA}.ttft", 14, False),
    "ttft_too_large": (f"{SLA}.ttft", 14, False),
    "ttft_zero": (f"{SLA}.ttft", 14, False),
    "unknown_key_sla": (f"{SLA}.ttf", 16, True),
    "unknown_key_spec": ("spec.autoAply", 22, True),
    "unknown_key_sweep": ("spec.profilingConfig.config.sweep.useAiConfigurater", 17, True),
    "use_aic_string": ("spec.profilingConfig.config.sweep.useAiConfigurator", 17, False),
    "workers_image_number": ("spec.deploymentOverrides.workersImage", 23, False),
    "yaml_alias_bomb": ("", 27, False),
    "yaml_alias_recursive": ("", 6, False),
    "yaml_bad_indent": ("", 7, False),
    "yaml_bad_timestamp": ("", 6, False),
    "yaml_tab": ("", 7, False),
    "yaml_unclosed_bracket": ("", 7, False),
}


def test_corpus_is_complete() -> None:
    assert sorted(p.stem for p in CORPUS.glob("*.yaml")) == sorted(EXPECTED)
    assert sum(not valid for *_, valid in EXPECTED.values()) >= 30


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_bad_dgdr(stem: str) -> None:
    path, line, valid = EXPECTED[stem]
    file = CORPUS / f"{stem}.yaml"
    result = run_cli("dgdr", "validate", file, "-o", "json")
    [report] = result.json()
    assert report["file"] == str(file) and report["valid"] is valid
    if valid:
        assert result.exit_code == 0 and report["errors"] == []
        [first] = report["warnings"]
        assert "did you mean" in first["message"]
    else:
        assert result.exit_code == 1
        assert result.stderr.strip() == "error: 1 of 1 file(s) invalid"
        first = report["errors"][0]
    assert (first["path"], first["line"]) == (path, line), first
    assert first["message"] and "\n" not in first["message"]


@pytest.mark.parametrize(
    ("stem", "message"),
    [
        ("ttft_negative", "must be > 0 ms, got -5"),
        ("isl_zero", "must be > 0 tokens, got 0"),
        ("missing_model", "required field missing: spec.model"),
        ("bad_backend", "expected one of vllm, sglang, trtllm, got 'vlm' (did you mean 'vllm'?)"),
        ("sla_list", "expected an object, got a list"),
        ("unknown_key_sla", "`ttf`: did you mean `ttft`?"),
        ("empty_file", "empty file: expected a DynamoGraphDeploymentRequest"),
        ("ttft_inf", "must be a finite number, got .inf"),
        ("isl_too_large", "must be <= 10000000 tokens, got 1" + "0" * 30),
        ("ttft_too_large", "must be <= 3600000 ms, got 8.64e+07"),
        ("missing_config", "required field missing: spec.profilingConfig.config"),
    ],
)
def test_messages_are_human(stem: str, message: str) -> None:
    report = run_cli("dgdr", "validate", CORPUS / f"{stem}.yaml", "-o", "json").json()[0]
    assert message in [f["message"] for f in report["errors"] + report["warnings"]]


def test_yaml_errors_carry_line_and_column() -> None:
    report = run_cli("dgdr", "validate", CORPUS / "yaml_unclosed_bracket.yaml", "-o", "json")
    [error] = report.json()[0]["errors"]
    assert error["message"].startswith("invalid YAML") and error["column"] >= 1


def test_multi_document_reports_the_document_index() -> None:
    report = run_cli("dgdr", "validate", CORPUS / "multi_doc_second_bad.yaml", "-o", "json")
    data = report.json()[0]
    assert data["documents"] == 2 and [e["doc"] for e in data["errors"]] == [1]


def test_all_errors_of_a_document_are_reported() -> None:
    text = (CORPUS / "ttft_negative.yaml").read_text().replace("itl: 20.0", "itl: 0")
    report = validate_text(text.replace("backend: vllm", "backend: tgi"), "x.yaml")
    assert [(e.path, e.line) for e in report.errors] == [
        ("spec.backend", 7), (f"{SLA}.ttft", 14), (f"{SLA}.itl", 15),
    ]  # fmt: skip


def test_line_of_walks_mappings_and_sequences() -> None:
    text = "a:\n  b:\n    - x\n    - y: 1\n      z: 2\nc: 3\n"
    [doc] = load_documents(text)
    assert line_of(doc.node, ["a", "b", 1, "z"]) == 5
    assert line_of(doc.node, ["c"]) == 6
    assert line_of(doc.node, ["a", "missing", "deeper"]) == 1
    assert line_of(doc.node, ["a", "b", 9]) == 2


def test_format_path() -> None:
    assert format_path(["spec", "tolerations", 0, "key"]) == "spec.tolerations[0].key"
    assert format_path([]) == ""
