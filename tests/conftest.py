"""Shared fixtures: the test data shipped in ``tests/data`` and a CLI runner that keeps stderr
apart."""

from __future__ import annotations

import fnmatch
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


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package's wheel, built once per session (tests/wheel_venv.py)."""
    from tests.wheel_venv import build_wheel

    return build_wheel(tmp_path_factory.mktemp("dist"))


@pytest.fixture
def standin() -> Iterator[Any]:
    """A running loopback Kubernetes API stand-in (tests/k8s_standin.py), stopped afterwards."""
    from tests.k8s_standin import running_standin

    with running_standin() as server:
        yield server


# -- markers: which tests are `integration` or `slow` (pyproject registers both) ----------------
# `pytest -m "not integration and not slow"` is the fast subset (README "Run the tests"); the test
# command (scripts/test.sh) runs everything. A test may also carry `@pytest.mark.slow` itself;
# this table marks by node id so whole folders, modules and parameters need no edits of their own.
# Durations: `pytest -n 2 --durations=80` on the 2-core dev machine under load (issue 12).
_MARKED: tuple[tuple[str, str], ...] = (
    # real Prometheus, etcd and the mocker as subprocesses, the live loop end to end (50-60 s each)
    ("integration", "tests/integration/"),
    ("integration", "tests/profiler/test_online_mocker.py"),  # mocker subprocess, up to 48 s
    ("integration", "tests/cli/test_mocker_cli.py::test_serves_and_stops_on_sigterm"),
    ("integration", "tests/cli/test_mocker_cli.py::test_follows_virtual_state_file"),
    ("integration", "tests/adapters/test_prometheus.py::test_prometheus_stopped"),
    ("integration", "tests/adapters/test_etcd.py::test_etcd_stopped_then_restarted_catches_up"),
    ("integration", "tests/connectors/test_contract.py::*[[]etcd]"),
    # the wheel build into a fresh venv (5 s setup, 16 s)
    ("slow", "tests/test_wheel.py"),
    # every rendered container's command from the wheel in a fresh venv (36 cases, 40 s)
    ("slow", "tests/test_container_commands.py"),
    # the image: debootstrap + wheelhouse once (cached in .cache/image), then a buildah build
    # (2-4 min; seconds when its inputs are unchanged)
    ("slow", "tests/test_image.py::test_image_builds_and_runs"),
    # hypothesis fuzzing of every command and the bad-input case harness (3-11 s a case)
    ("slow", "tests/fuzz/"),
    ("slow", "tests/deploy/test_dgdr_fuzz.py"),  # hypothesis mutations of the DGDR examples (2 s)
    # subprocess planners and CLIs signalled mid-run (4-7 s)
    ("slow", "tests/cli/test_plan_run_cli.py::test_sigterm_stops_after_the_current_tick"),
    ("slow", "tests/cli/test_app.py::test_sigterm_mid_write_removes_partial_outputs_and_exits_143"),
    ("slow", "tests/cli/test_outputs_cli.py"),  # every case is a `python -m dynamo_plan` run
    # long loops and searches in-process (6-191 s)
    ("slow", "tests/test_control.py::test_ten_thousand_ticks_with_flat_memory"),
    ("slow", "tests/core/test_planner.py::test_constant_load_decisions_settle"),
    ("slow", "tests/trace/test_bucket.py::test_bucketed_means_match_direct_computation"),
    ("slow", "tests/trace/test_bucket.py::test_bucketing_conserves_requests_and_is_contiguous"),
    # every ARIMA case: the first in a worker pays pmdarima's import, fits take 3-18 s
    ("slow", "tests/predict/test_contract.py::*[[]*arima]"),
    ("slow", "tests/predict/test_predictors.py::test_arima_fits_*"),
    ("slow", "tests/predict/test_guard.py::test_random_walks_are_left_to_the_last_value"),
    ("slow", "tests/deploy/test_create.py::test_created_dgdr_validates"),
    ("slow", "tests/profiler/test_sweep.py::test_tighter_ttft_never_chooses_smaller_tp_roofline"),
    ("slow", "tests/profiler/test_sweep.py::test_tighter_itl_never_chooses_smaller_tp_roofline"),
    ("slow", "tests/profiler/test_online.py::test_prefill_matches_the_server"),
    ("slow", "tests/profiler/test_online.py::test_decode_matches_the_server"),
    ("slow", "tests/profiler/test_online.py::test_writes_the_offline_layout"),
    ("slow", "tests/profiler/test_online.py::test_a_run_that_reaches_its_load_has_no_warnings"),
    ("slow", "tests/profiler/test_online.py::test_result_configmap"),
    ("slow", "tests/profiler/test_online.py::test_one_role_and_tp"),
    ("slow", "tests/cli/test_predict_cli.py::test_backtest_json_shape"),
    ("slow", "tests/cli/test_demo_cli.py"),
    ("slow", "tests/cli/test_simulate_cli.py::test_compare_plot_and_csv"),
    ("slow", "tests/sim/test_reference.py::test_fast_engine_matches_reference"),
    ("slow", "tests/sim/test_plot.py"),
    ("slow", "tests/sim/test_engine.py::test_random_scaling_keeps_every_request"),
    # 1.5-5 s each in the fast subset's own run (`-m "not integration and not slow"`)
    ("slow", "tests/cli/test_mocker_cli.py::test_corrupt_profile_json_is_refused_before_serving"),
    ("slow", "tests/cli/test_mocker_cli.py::test_settings_that_cannot_serve_are_refused_*"),
    ("slow", "tests/cli/test_predict_cli.py::test_backtest_csv_and_plot"),
    ("slow", "tests/cli/test_simulate_cli.py::test_single_plot_and_table"),
    ("slow", "tests/cli/test_profile_cli.py::test_replaces_an_earlier_profile"),
    ("slow", "tests/cli/test_profile_cli.py::test_golden"),
    ("slow", "tests/predict/test_metrics.py::test_metrics_match_direct_numpy"),
    ("slow", "tests/predict/test_plot.py::test_plot_conventions"),
    ("slow", "tests/predict/test_guard.py::test_guard_false_alarm_rate_is_at_most_alpha"),
    ("slow", "tests/predict/test_predictors.py::test_arima_constant_window_*"),
    ("slow", "tests/test_k8s_standin.py::test_delete_and_injected_failures"),
    ("slow", "tests/cli/test_plan_run_cli.py::test_kubernetes_connector_run_against_the_api_*"),
    ("slow", "tests/core/test_planner.py::test_invariants_over_random_sequences"),
    # meta-schema check of every converted CRD schema (3-4 s a release)
    ("slow", "tests/test_crd_schema.py::test_every_served_version_converts_to_a_valid_json_*"),
    # AI Configurator (the real package): database loads and sweeps of its points (1.5-8 s each)
    ("slow", "tests/estimator/test_aic.py"),
    ("slow", "tests/estimator/test_roofline.py::test_aiconfigurator_gives_points_like_roofline"),
    ("slow", "tests/estimator/test_calibration.py::test_calibrated_at_tp1_on_aic_carries_*"),
    (
        "slow",
        "tests/cli/test_estimate_estimators_cli.py::test_aiconfigurator_rows_are_aics_numbers",
    ),
    (
        "slow",
        "tests/cli/test_estimate_estimators_cli.py::test_compare_prints_both_with_their_ratio",
    ),
    ("slow", "tests/cli/test_estimate_estimators_cli.py::test_auto_says_which_estimator_and_why"),
    ("slow", "tests/profiler/test_offline_estimators.py::test_aiconfigurator_profile_names_*"),
    ("slow", "tests/profiler/test_offline_estimators.py::test_a_profile_from_aic_calibrates_*"),
    ("slow", "tests/profiler/test_offline_estimators.py::test_dgdr_use_ai_configurator_runs_aic_*"),
    # plan run through the CLI against the stand-in (7 s under load)
    ("slow", "tests/connectors/test_kubernetes_adapters.py::test_plan_run_says_at_start_*"),
    # 2-16 s each in the fast subset's own run on a loaded machine (issues 13-16's tests)
    ("slow", "tests/cli/test_simulate_cli.py::test_compare_table_is_ranked_with_units"),
    ("slow", "tests/cli/test_progress.py::test_simulate_compare_shows_progress_off_a_terminal"),
    ("slow", "tests/cli/test_dgdr_spellings_cli.py::test_a_v1beta1_dgdr_from_the_crd_*"),
    ("slow", "tests/cli/test_predict_cli.py::test_backtest_score_gpu_hours"),
    ("slow", "tests/cli/test_profile_cli.py::test_result_fields"),
    ("slow", "tests/profiler/test_workflow_dgdr.py"),
    ("slow", "tests/test_crd_conformance.py::test_dgdr_run_status_and_objects_are_what_the_*"),
    ("slow", "tests/test_k8s_standin_jobs.py::test_label_selector_on_nodes"),
    ("slow", "tests/sim/test_optimal.py::test_attainment_planner_reads_only_the_past"),
    ("slow", "tests/sim/test_optimal.py::test_optimal_*"),
    ("slow", "tests/sim/test_planner_policies.py::test_policies_satisfy_the_protocol"),
    ("slow", "tests/sim/test_planner_policies.py::test_compare_json_ratio_to_the_oracle"),
    ("slow", "tests/core/test_decode_surface.py::test_capacity_*"),
    ("slow", "tests/core/test_decode_surface.py::test_agrees_with_dynamo_*"),
    # the `dgdr run` workflow: offline profiling there picks AI Configurator (installed), whose
    # import and database load cost the first test of a worker 4-6 s
    ("slow", "tests/cli/test_dgdr_run_cli.py"),
    ("slow", "tests/deploy/test_workflow.py"),
    ("slow", "tests/sim/test_cluster_model.py::test_engine_and_mock_cluster_match_the_*"),
    ("slow", "tests/cli/test_extend_cli.py"),
)
# Fixtures that start a real server (tests/servers.py): every test using one is `integration`.
# (module, fixture); module None: any module.
_REAL_SERVER_FIXTURES: tuple[tuple[str | None, str], ...] = (
    (None, "etcd"),  # tests/adapters/test_etcd.py, tests/cli/test_virtual_cli.py
    (None, "etcd_server"),  # tests/connectors/conftest.py
    ("tests/adapters/test_prometheus.py", "env"),  # real Prometheus scraping an exporter
)


def _matches(pattern: str, nodeid: str) -> bool:
    """A folder (``dir/``), a module, a test with all its parameters, or an ``fnmatch`` glob."""
    if pattern.endswith("/"):
        return nodeid.startswith(pattern)
    if "*" in pattern:
        return fnmatch.fnmatchcase(nodeid, pattern)
    return nodeid == pattern or nodeid.startswith((pattern + "::", pattern + "["))


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = config.rootpath
    for _, pattern in _MARKED:
        path = pattern.split("::")[0]
        if not (root / path).exists():
            raise pytest.UsageError(f"tests/conftest.py _MARKED names a missing path: {pattern}")
    used: set[str] = set()
    for item in items:
        for marker, pattern in _MARKED:
            if _matches(pattern, item.nodeid):
                item.add_marker(marker)
                used.add(pattern)
        module = item.nodeid.split("::")[0]
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec is not None else {}  # a parameter, not a fixture
        for where, fixture in _REAL_SERVER_FIXTURES:
            uses = fixture in getattr(item, "fixturenames", ()) and fixture not in params
            if uses and where in (None, module):
                item.add_marker("integration")
    # A renamed test must not drop out of the table unseen: when a whole module was collected,
    # each of its entries must have marked something.
    collected = {item.nodeid.split("::")[0] for item in items}
    whole_run = not any("::" in arg for arg in config.args)
    for _, pattern in _MARKED:
        path = pattern.split("::")[0]
        if whole_run and path in collected and pattern not in used:
            raise pytest.UsageError(f"tests/conftest.py _MARKED matches no test: {pattern}")
