"""``profile --offline`` with AI Configurator (the installed package), ``auto``, a DGDR's
``useAiConfigurator``/``aicSystem``/``aicHfId``/``aicBackendVersion``, and ``--calibrate``
(a real measured profile, and a profile AI Configurator produced)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from dynamo_plan.adapters.profile_files import load_profile
from dynamo_plan.estimator import aic as aic_module
from dynamo_plan.estimator.aic import aiconfigurator_available
from tests.conftest import run_cli
from tests.optional import missing, needs

REAL = (
    Path(__file__).resolve().parent.parent / "data" / "profiles" / "h200_llama3.1-8b-fp8_tp1p_tp1d"
)
needs_aic = needs(aiconfigurator_available(), "the aiconfigurator package is not installed")
FLAGS = [
    "--model", "llama-3.1-8b", "--system", "h200_sxm", "--backend", "vllm", "--isl", "3000",
    "--osl", "300", "--ttft", "300", "--itl", "20", "--max-gpus-per-engine", "2", "--no-plots",
]  # fmt: skip


def _dgdr(tmp_path: Path, sweep: dict[str, object]) -> Path:
    path = tmp_path / "dgdr.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "nvidia.com/v1alpha1",
        "kind": "DynamoGraphDeploymentRequest",
        "metadata": {"name": "qwen"},
        "spec": {"model": "Qwen/Qwen3-32B", "backend": "trtllm",
                 "profilingConfig": {"profilerImage": "nvcr.io/nvidia/ai-dynamo/profiler:x",
                                     "config": {
                     "sla": {"isl": 2000, "osl": 200, "ttft": 500, "itl": 30},
                     "hardware": {"maxNumGpusPerEngine": 4},
                     "sweep": sweep}}},
    }))  # fmt: skip
    return path


@pytest.fixture(scope="module")
def aic_profile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    if not aiconfigurator_available():
        missing("the aiconfigurator package is not installed")
    out = tmp_path_factory.mktemp("aic") / "profile"
    r = run_cli(
        "profile", "--offline", *FLAGS, "--estimator", "aiconfigurator", "--out", out, "-o", "json"
    )
    assert r.exit_code == 0, r.stderr
    return out, r.json()


@needs_aic
def test_aiconfigurator_profile_names_the_estimator_and_its_database(
    aic_profile: tuple[Path, dict],
) -> None:
    out, doc = aic_profile
    assert doc["estimator"] == "aiconfigurator" and doc["estimator_selected"] == "requested"
    meta = json.loads((out / "profile.json").read_text())
    how = meta["obtained_by"]
    assert how["estimator"] == "aiconfigurator" and how["method"] == "estimated"
    assert how["estimator_version"].startswith(aic_module.aiconfigurator_version() or "?")
    assert how["aiconfigurator"]["system"] == "h200_sxm"
    assert how["aiconfigurator"]["model_path"] == "meta-llama/Meta-Llama-3.1-8B"
    assert how["aiconfigurator"]["backend_version"] in how["estimator_version"]
    profile = load_profile(out)  # Dynamo's layout, loadable like any other
    assert profile.max_kv_tokens == doc["decode"]["max_kv_tokens"]


@needs_aic
def test_a_profile_from_aic_calibrates_the_roofline(
    aic_profile: tuple[Path, dict], tmp_path: Path
) -> None:
    out, _ = aic_profile
    r = run_cli(
        "profile", "--offline", *FLAGS, "--calibrate", out, "--out", tmp_path / "cal", "-o", "json"
    )
    assert r.exit_code == 0, r.stderr
    cal = r.json()["calibration"]
    assert cal["source"] == str(out)
    assert cal["measured"]["backend"] == "vllm" and cal["measured"]["model"] == "llama-3.1-8b"
    assert cal["residuals"]["prefill"]["median_abs_error"] < 0.1
    written = json.loads((tmp_path / "cal" / "profile.json").read_text())["obtained_by"]
    assert written["calibration"] == cal and written["estimator_version"].endswith("+calibrated")


@needs_aic
@pytest.mark.parametrize("snake", [False, True], ids=["camelCase", "snake_case"])
def test_dgdr_use_ai_configurator_runs_aic_with_its_system_model_and_version(
    tmp_path: Path, snake: bool
) -> None:
    sweep = {"useAiConfigurator": True, "aicSystem": "h100_sxm", "aicHfId": "Qwen/Qwen3-32B",
             "aicBackendVersion": "1.3.0rc20"}  # fmt: skip
    if snake:  # Dynamo before 0.8.1 spelled the sweep keys in snake_case
        sweep = {re.sub(r"([A-Z])", r"_\1", k).lower(): v for k, v in sweep.items()}
    dgdr = _dgdr(tmp_path, sweep)
    r = run_cli("profile", "--offline", "--dgdr", dgdr, "--out", tmp_path / "p", "--no-plots",
                "-o", "json")  # fmt: skip
    assert r.exit_code == 0, r.stderr
    how = json.loads((tmp_path / "p" / "profile.json").read_text())["obtained_by"]
    assert how["selected"] == f"{dgdr} useAiConfigurator"
    assert how["aiconfigurator"] == {
        "system": "h100_sxm", "backend": "trtllm", "backend_version": "1.3.0rc20",
        "model_path": "Qwen/Qwen3-32B",
    }  # fmt: skip


def test_dgdr_use_ai_configurator_without_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One line naming the DGDR; ``--estimator auto`` takes the roofline and says why."""
    monkeypatch.setattr(aic_module, "aiconfigurator_available", lambda: False)
    dgdr = _dgdr(tmp_path, {"useAiConfigurator": True, "aicSystem": "h200_sxm"})
    r = run_cli("profile", "--offline", "--dgdr", dgdr, "--out", tmp_path / "p", "--no-plots")
    assert r.exit_code == 1 and r.stderr.strip().count("\n") == 0
    assert "asks for useAiConfigurator" in r.stderr and "pip install" in r.stderr
    assert not (tmp_path / "p").exists()
    r = run_cli("profile", "--offline", "--dgdr", dgdr, "--estimator", "auto",
                "--out", tmp_path / "p", "--no-plots", "-o", "json")  # fmt: skip
    assert r.exit_code == 0, r.stderr
    doc = r.json()
    assert doc["estimator"] == "roofline"
    assert doc["estimator_selected"] == (
        "auto: roofline, because the aiconfigurator package is not installed"
    )
    how = json.loads((tmp_path / "p" / "profile.json").read_text())["obtained_by"]
    assert how["requested"] == "auto" and how["selected"] == doc["estimator_selected"]


def test_calibrate_on_the_real_profile_records_source_and_residuals(tmp_path: Path) -> None:
    r = run_cli("profile", "--offline", *FLAGS, "--dtype", "fp8", "--calibrate", REAL,
                "--out", tmp_path / "p", "-o", "json")  # fmt: skip
    assert r.exit_code == 0, r.stderr
    cal = json.loads((tmp_path / "p" / "profile.json").read_text())["obtained_by"]["calibration"]
    assert cal["source"] == str(REAL)
    assert cal["measured"]["tp"] == {"prefill": 1, "decode": 1}  # from the directory's name
    assert cal["residuals"]["decode"]["points"] > 10
    assert set(cal["fitted"]) >= {"gemm_efficiency", "hbm_efficiency", "step_ms"}
    assert "weight_hbm_efficiency" in cal["fixed"]
    assert any("records no model" in n for n in cal["notes"])


def test_calibrate_with_aiconfigurator_is_a_usage_error(tmp_path: Path) -> None:
    r = run_cli("profile", "--offline", *FLAGS, "--estimator", "aiconfigurator",
                "--calibrate", REAL, "--out", tmp_path / "p")  # fmt: skip
    assert r.exit_code == 2 and "cannot be combined" in r.stderr
