"""The wheel ships schemas/, templates/ and sample_traces/ and runs from a fresh virtualenv.

The session's wheel (``wheel`` fixture, tests/conftest.py) is installed with ``--no-deps`` into a
new virtualenv whose dependencies are borrowed from the test environment (tests/wheel_venv.py),
and the console script runs from outside the source tree.
"""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

from tests.wheel_venv import fresh_venv


def test_wheel_contains_shipped_folders(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for folder in ("schemas", "templates", "sample_traces"):
        assert any(n.startswith(f"dynamo_plan/_shipped/{folder}/") for n in names), folder
    assert "dynamo_plan/_shipped/sample_traces/mooncake_conversation_10min.jsonl" in names


def test_fresh_venv_runs_a_command_that_reads_a_shipped_file(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    purelib = fresh_venv(wheel, env_dir)
    where = subprocess.run(
        [
            env_dir / "bin" / "python",
            "-c",
            "import dynamo_plan.resources as r; print(r.shipped_dir('sample_traces'))",
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(purelib), where
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
