"""Shared fixtures: the test data shipped in ``tests/data`` and a CLI runner that keeps stderr
apart."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from typer.testing import CliRunner

# CI runs the property and fuzz tests with a fixed seed, so a submission's result does not depend
# on luck; local runs (no CI variable) explore new examples every time.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

REPO_ROOT = Path(__file__).resolve().parent.parent
# Real public data the tests need, inside the repository (tests/data/README.md: what, sources,
# licenses): the H200 profile, the DGDR CRD and excerpts of the real traces. Tests never read
# anything beside the checkout.
SHARED_DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``tests/data``: the H200 profile, the DGDR CRD and trace excerpts (see its README)."""
    return SHARED_DATA


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_cli(*args: str | Path) -> CliResult:
    """Invoke ``dynamo-plan ARGS`` in-process; stdout and stderr separate, exceptions surfaced."""
    from dynamo_plan.cli.app import app

    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return CliResult(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def cli() -> Any:
    return run_cli


@pytest.fixture
def standin() -> Iterator[Any]:
    """A running loopback Kubernetes API stand-in (tests/k8s_standin.py), stopped afterwards."""
    from tests.k8s_standin import running_standin

    with running_standin() as server:
        yield server
