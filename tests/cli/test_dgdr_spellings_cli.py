"""Issue 13's done-when items for DGDRs, end to end through the CLI:

* snake_case (Dynamo 0.6) and camelCase (0.8.1+) spellings of the same DGDR produce
  byte-identical profiles with ``profile --offline --dgdr``;
* a v1beta1 DGDR written from the 1.5.0 CRD's documentation (tests/data/dgdrs/v1beta1_1.5.yaml)
  goes through ``dgdr validate``, ``profile --offline --dgdr``, ``generate-dgd`` and
  ``dgdr run --no-cluster``, and what they write is accepted by Dynamo 1.5's CRDs.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.conftest import run_cli
from tests.crd_schema import crd_errors

DGDRS = Path(__file__).parents[1] / "data" / "dgdrs"


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_snake_and_camel_case_dgdrs_give_byte_identical_profiles(tmp_path: Path) -> None:
    """``--estimator auto``: AI Configurator where it has the DGDRs' aicBackendVersion (0.20.0,
    as Dynamo's sample asks), else the roofline, so the test runs with or without the extra."""
    outs = {}
    for name in ("v1alpha1_0.6_snake", "v1alpha1_0.9_camel"):
        out = tmp_path / name
        result = run_cli("profile", "--offline", "--dgdr", DGDRS / f"{name}.yaml", "--out", out,
                         "--no-plots", "--estimator", "auto", "-o", "json")  # fmt: skip
        assert result.exit_code == 0, result.stderr
        outs[name] = _files(out)
    snake, camel = outs.values()
    assert "profile.json" in snake and len(snake) >= 5
    assert snake == camel


def test_a_v1beta1_dgdr_from_the_crd_documentation_goes_all_the_way(tmp_path: Path) -> None:
    dgdr = DGDRS / "v1beta1_1.5.yaml"
    check = run_cli("dgdr", "validate", dgdr, "-o", "json")
    assert check.exit_code == 0 and check.json()[0]["warnings"] == []

    profile = tmp_path / "profile"
    made = run_cli("profile", "--offline", "--dgdr", dgdr, "--out", profile, "--no-plots",
                   "-o", "json")  # fmt: skip
    assert made.exit_code == 0, made.stderr
    meta = yaml.safe_load((profile / "profile.json").read_text())
    assert (meta["sla"]["isl"], meta["sla"]["osl"]) == (3000, 300)  # spec.workload
    assert (meta["sla"]["ttft"], meta["sla"]["itl"]) == (200.0, 20.0)  # spec.sla
    assert meta["system"] == "h200_sxm" and meta["backend"] == "vllm"  # hardware.gpuSku

    manifest = tmp_path / "dgd.yaml"
    generated = run_cli("generate-dgd", "--dgdr", dgdr, "--profile", profile, "-f", manifest)
    assert generated.exit_code == 0, generated.stderr
    objects = list(yaml.safe_load_all(manifest.read_text()))
    dgd = objects[-1]
    assert dgd["apiVersion"] == "nvidia.com/v1beta1" and dgd["kind"] == "DynamoGraphDeployment"
    assert dgd["metadata"]["name"] == "qwen3-0-6b" and dgd["metadata"]["namespace"] == "dynamo"
    assert crd_errors(dgd, "1.5") == []

    out = tmp_path / "run"
    ran = run_cli("dgdr", "run", dgdr, "--no-cluster", "--out", out, "-o", "json")
    assert ran.exit_code == 0, ran.stderr
    result = ran.json()
    assert result["apiVersion"] == "nvidia.com/v1beta1" and result["release"] == "1.5"
    assert result["state"] == "Ready"  # autoApply true, but --no-cluster applies nothing
    assert result["status"]["phase"] == "Ready" and result["status"]["dgdName"] == "qwen3-0-6b"
    body = {"apiVersion": "nvidia.com/v1beta1", "kind": "DynamoGraphDeploymentRequest",
            "metadata": {"name": "qwen3-0-6b"}, "spec": {"model": "Qwen/Qwen3-0.6B"},
            "status": result["status"]}  # fmt: skip
    assert crd_errors(body, "1.5") == []
    run_dgd = list(yaml.safe_load_all((out / "dgd.yaml").read_text()))[-1]
    assert crd_errors(run_dgd, "1.5") == []
    assert sorted(Path(f).name for f in result["files"]) == [
        "dgd.yaml", "dgdr-output-qwen3-0-6b.yaml", "qwen3-0-6b-profile.yaml",
    ]  # fmt: skip


def test_dgdr_run_writes_for_the_release_asked(tmp_path: Path) -> None:
    out = tmp_path / "run"
    ran = run_cli("dgdr", "run", DGDRS / "v1alpha1_0.6_snake.yaml", "--no-cluster", "--out", out,
                  "--dynamo-version", "0.6", "-o", "json")  # fmt: skip
    assert ran.exit_code == 0, ran.stderr
    assert ran.json()["release"] == "0.6" and ran.json()["status"]["state"] == "Ready"
    dgd = list(yaml.safe_load_all((out / "dgd.yaml").read_text()))[-1]
    assert dgd["apiVersion"] == "nvidia.com/v1alpha1" and "services" in dgd["spec"]
    assert crd_errors(dgd, "0.6") == []
