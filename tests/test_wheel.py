"""The wheel ships schemas/, templates/ and sample_traces/ and runs from a fresh virtualenv.

Builds the wheel (no build isolation: hatchling comes with the dev extra), installs it with
``--no-deps`` into a new virtualenv whose dependencies are borrowed from the test environment
through a ``.pth`` line, and runs the console script from outside the source tree.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("dynamo_plan-*.whl")
    return built


def test_wheel_contains_shipped_folders(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for folder in ("schemas", "templates", "sample_traces"):
        assert any(n.startswith(f"dynamo_plan/_shipped/{folder}/") for n in names), folder
    assert "dynamo_plan/_shipped/sample_traces/mooncake_conversation_10min.jsonl" in names


def test_fresh_venv_runs_a_command_that_reads_a_shipped_file(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # Dependencies come from the test environment; dynamo_plan itself only from the wheel.
    Path(purelib, "borrowed_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", wheel],
        check=True,
        capture_output=True,
    )
    where = subprocess.run(
        [py, "-c", "import dynamo_plan.resources as r; print(r.shipped_dir('sample_traces'))"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(Path(purelib)), where
    run = subprocess.run(
        [
            env_dir / "bin" / "dynamo-plan",
            "predict",
            "backtest",
            "--predictors",
            "constant",
            "-o",
            "json",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["traces"] and report["traces"][0].endswith("mooncake_conversation_10min.jsonl")
    assert report["intervals"] > 0
