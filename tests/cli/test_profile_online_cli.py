"""``profile --online --dgdr`` (temporary DGDs + profiling Jobs) and ``dgdr run``'s progress view,
against the Kubernetes API stand-in with the cluster simulator (tests/profiler/cluster_sim.py)
playing the operator and the Job controller."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from dynamo_plan.adapters.profile_files import load_profile
from dynamo_plan.profiler import cluster_run
from tests.conftest import run_cli
from tests.deploy.test_workflow_online import online_doc
from tests.k8s_standin import StandIn
from tests.profiler.cluster_sim import FAIL_MESSAGE, ClusterSim
from tests.profiler.test_online_cluster import NS, PROFILE, leftovers, online_dgdr, write


@pytest.fixture
def kubeconfig(standin: StandIn, tmp_path: Path) -> Path:
    return standin.kubeconfig(tmp_path / "kubeconfig", namespace=NS)


def profile_cli(path: Path, kubeconfig: Path, out: Path, *extra: str) -> Any:
    return run_cli(
        "profile", "--online", "--dgdr", path, "--out", out, "--kubeconfig", kubeconfig,
        "--poll", "0.01", "--no-plots", *extra,
    )  # fmt: skip


def test_online_dgdr_measures_in_the_cluster_and_shows_progress(
    standin: StandIn, kubeconfig: Path, shared_data: Path, tmp_path: Path
) -> None:
    path = write(tmp_path / "d.yaml", online_dgdr())
    out = tmp_path / "prof"
    with ClusterSim(kubeconfig, NS, shared_data / PROFILE) as sim:
        result = profile_cli(path, kubeconfig, out, "-o", "json")
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    # the namespace is the kubeconfig context's (the DGDR names none)
    assert doc["namespace"] == NS and doc["candidates"] == [1, 2]
    assert len(sim.jobs) == 2 * len(doc["candidates"])
    assert [m["tp"] for m in doc["measurements"]] == [1, 1, 2, 2]
    written = load_profile(out)
    assert doc["prefill"]["tp"] == written.meta["parallelism"]["prefill"]["tp"]
    assert doc["decode"]["max_kv_tokens"] == written.max_kv_tokens
    assert doc["leftovers"] == [] and leftovers(standin) == []
    # stderr (not a terminal): one line per new stage of each measurement, polls not repeated
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("rbac: ") and lines[-1] == f"done: profile written to {out}"
    assert "[1/4] TP1 prefill deploy: applying DGD" in result.stderr
    assert "[4/4] TP2 decode result: read ConfigMap" in result.stderr
    assert len(lines) == len(set(lines))


def test_online_dgdr_table_output(
    standin: StandIn, kubeconfig: Path, shared_data: Path, tmp_path: Path
) -> None:
    path = write(tmp_path / "d.yaml", online_dgdr())
    with ClusterSim(kubeconfig, NS, shared_data / PROFILE):
        result = profile_cli(path, kubeconfig, tmp_path / "prof")
    assert result.exit_code == 0, result.stderr
    assert "prefill" in result.stdout and "decode" in result.stdout
    assert "measured TP 1, 2" in result.stdout


def test_ctrl_c_cleans_up_then_exits_130_with_one_line(
    standin: StandIn,
    kubeconfig: Path,
    shared_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> None:
        # Ctrl-C once the first temporary DGD is Ready, before its Job exists (so the simulator
        # thread has nothing left in flight that could race with the cleanup)
        raise KeyboardInterrupt

    monkeypatch.setattr(cluster_run, "render_job", interrupted)
    path = write(tmp_path / "d.yaml", online_dgdr())
    with ClusterSim(kubeconfig, NS, shared_data / PROFILE) as sim:
        result = profile_cli(path, kubeconfig, tmp_path / "prof", "-o", "json")
    assert result.exit_code == 130 and result.stdout == ""
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted:") and "deleted" in last
    assert sim.dgds and leftovers(standin) == []
    deletes = [p for m, p in standin.requests if m == "DELETE"]
    assert any("/dynamographdeployments/" in p for p in deletes)
    assert not (tmp_path / "prof").exists()


def test_failed_job_exits_3_and_cleans_up(
    standin: StandIn, kubeconfig: Path, shared_data: Path, tmp_path: Path
) -> None:
    path = write(tmp_path / "d.yaml", online_dgdr())
    with ClusterSim(kubeconfig, NS, shared_data / PROFILE, mode="fail-job"):
        result = profile_cli(path, kubeconfig, tmp_path / "prof")
    assert result.exit_code == 3 and FAIL_MESSAGE in result.stderr
    assert leftovers(standin) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--endpoint", "http://127.0.0.1:1", "--dgdr", "d.yaml", "--out", "o"], "exactly one"),
        (["--out", "o", "--isl", "10", "--osl", "10"], "exactly one"),
        (["--dgdr", "d.yaml"], "needs --out"),
        (["--dgdr", "d.yaml", "--out", "o", "--isl", "10", "--tp", "2"], "--tp, --isl"),
        (["--endpoint", "http://127.0.0.1:1", "--out", "o", "--poll", "1"], "--poll"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    write(tmp_path / "d.yaml", online_dgdr())
    args = [str(tmp_path / a) if a in ("d.yaml", "o") else a for a in args]
    result = run_cli("profile", "--online", *args)
    assert result.exit_code == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_dgdr_run_shows_online_profiling_progress(
    standin: StandIn, kubeconfig: Path, shared_data: Path, tmp_path: Path
) -> None:
    standin.install_crd()
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump(online_doc()))
    with ClusterSim(kubeconfig, NS, shared_data / PROFILE):
        result = run_cli(
            "dgdr", "run", path, "--kubeconfig", kubeconfig, "--poll", "0.01", "-o", "json"
        )
    assert result.exit_code == 0, result.stderr
    assert result.json()["phases"] == ["Pending", "Profiling", "Ready"]
    lines = result.stderr.strip().splitlines()
    first_event = lines.index(next(x for x in lines if x.startswith("rbac: ")))
    assert lines[first_event - 1].startswith("Profiling:")
    assert "[1/4] TP1 prefill deploy: applying DGD" in result.stderr
    assert any(x.startswith("done: profile written to") for x in lines)
    assert lines[-1].startswith("Ready:")
