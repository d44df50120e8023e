"""``mocker serve --default-osl``: refused below 1; its default is the profile's recorded OSL."""

from __future__ import annotations

from pathlib import Path

from dynamo_plan.cli.mocker import osl_of
from dynamo_plan.sim.mocker.openai_api import DEFAULT_OSL
from tests.conftest import run_cli

PROFILE = Path("profiles") / "h200_llama3.1-8b-fp8_tp1p_tp1d"


def test_default_osl_below_one_is_refused(shared_data: Path) -> None:
    r = run_cli("mocker", "serve", "--profile", shared_data / PROFILE, "--default-osl", "0")
    assert r.exit_code == 1
    assert "--default-osl must be >= 1" in r.stderr


def test_default_is_the_profiles_osl_else_the_fallback() -> None:
    assert osl_of({"isl": 3000.0, "osl": 150.4}, DEFAULT_OSL) == 150
    assert osl_of({"osl": 0.2}, DEFAULT_OSL) == 1
    assert osl_of({}, 99) == 99
