"""``dynamo-plan plan run``: flag validation, config merging (``--print-config -o json``), exit
codes, and short real runs (Prometheus unreachable → unknown windows → holds)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from dynamo_plan.adapters.kubernetes import KubeClient
from dynamo_plan.connectors.kubernetes import DGD_KIND
from tests.conftest import REPO_ROOT, run_cli
from tests.k8s_standin import StandIn
from tests.servers import free_port

H200 = "profiles/h200_llama3.1-8b-fp8_tp1p_tp1d"
CLOSED = "http://127.0.0.1:1"  # nothing listens on port 1: every query fails at once


@pytest.fixture
def base(shared_data: Path) -> list[str]:
    return ["plan", "run", "--profile", str(shared_data / H200), "--model", "llama"]


def test_print_config_flag_overrides_file_overrides_default(
    base: list[str], tmp_path: Path
) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text("interval: 60\nttft: 900\nwarmup_trace: traces/t.jsonl\nmetrics_port: 0\n")
    # --interval is given at its default value: it must still win over the file
    r = run_cli(*base, "--config", cfg, "--interval", "180", "--print-config", "-o", "json")
    assert r.exit_code == 0, r.stderr
    s = r.json()
    assert s["interval"] == 180.0
    assert s["ttft"] == 900.0
    assert s["itl"] == 50.0  # default
    assert s["warmup_trace"] == str(tmp_path / "traces/t.jsonl")
    assert s["metrics_port"] == 0
    assert s["model"] == "llama" and s["connector"] == "none"


def test_config_file_can_hold_everything(shared_data: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"profile: {shared_data / H200}\nmodel: m\nconnector: virtual\netcd: http://etcd:2379\n"
        "namespace: dyn\nmax_gpu_budget: -1\n"
    )
    r = run_cli("plan", "run", "--config", cfg, "--print-config", "-o", "json")
    assert r.exit_code == 0, r.stderr
    s = r.json()
    assert (s["connector"], s["etcd"], s["max_gpu_budget"]) == ("virtual", "http://etcd:2379", -1)
    # round trip: what --print-config prints is a config file
    again = tmp_path / "again.yaml"
    again.write_text(r.stdout)
    r2 = run_cli("plan", "run", "--config", again, "--print-config", "-o", "json")
    assert r2.exit_code == 0 and r2.json() == s


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--connector", "virtual"], 2, "give exactly one, neither was given"),
        (["--state", "s.json"], 2, "belong to --connector virtual"),
        (["--connector", "kubernetes"], 2, "kubernetes"),
        (["--interval", "-1"], 1, "--interval must be a finite number > 0"),
        (["--max-gpu-budget", "0"], 1, "--max-gpu-budget must be >= 1 or -1"),
        (["--max-gpu-budget", "1"], 4, "max_gpu_budget 1 GPUs cannot hold"),
        (["--min-endpoint", "3", "--max-gpu-budget", "5"], 4, "they need 6 GPUs"),
        (["--load-quantile", "1"], 1, "--load-quantile must be in (0, 1)"),
        (["--isl", "0.5"], 1, "--isl must be a finite number >= 1 (tokens)"),
        (["--osl", "0"], 1, "--osl must be a finite number >= 1 (tokens)"),
    ],
)
def test_flag_validation(base: list[str], args: list[str], code: int, message: str) -> None:
    r = run_cli(*base, *args, "--print-config")
    assert r.exit_code == code
    assert message in r.stderr


def test_profile_and_model_are_required(shared_data: Path) -> None:
    r = run_cli("plan", "run", "--model", "m", "--print-config")
    assert r.exit_code == 2 and "--profile" in r.stderr
    r = run_cli("plan", "run", "--profile", shared_data / H200, "--print-config")
    assert r.exit_code == 2 and "--model" in r.stderr


def test_bad_config_file_names_file_and_line(base: list[str], tmp_path: Path) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text("model: m\nmax_gpu_budgett: 4\n")
    r = run_cli(*base, "--config", cfg, "--print-config")
    assert r.exit_code == 1
    assert f"{cfg}:2: max_gpu_budgett: unknown key (did you mean max_gpu_budget?)" in r.stderr


def test_kubernetes_connector_flags_go_together(base: list[str]) -> None:
    r = run_cli(*base, "--connector", "kubernetes", "--print-config")
    assert r.exit_code == 2 and "--dgd" in r.stderr
    r = run_cli(*base, "--connector", "none", "--dgd", "x", "--print-config")
    assert r.exit_code == 2 and "--connector kubernetes" in r.stderr


def test_kubernetes_connector_run_against_the_api_standin(
    base: list[str], standin: StandIn, tmp_path: Path
) -> None:
    """Through the loopback Kubernetes API stand-in: start from the DGD's ready replicas and its
    GPUs per engine; with Prometheus unreachable every tick holds and nothing is patched."""
    kubeconfig = standin.kubeconfig(tmp_path / "kubeconfig", namespace="team")
    kube = KubeClient(kubeconfig=kubeconfig)
    body = yaml.safe_load((REPO_ROOT / "templates/mocker/disagg-v1alpha1-0.6.yaml").read_text())
    body["metadata"]["name"] = "dgd1"
    services = body["spec"]["services"]
    services["MockerDecodeWorker"]["resources"] = {"limits": {"gpu": "2"}}
    services["MockerPrefillWorker"]["replicas"], services["MockerDecodeWorker"]["replicas"] = 2, 3
    kube.apply(DGD_KIND, "team", body, "dynamo-plan")

    def service(name: str, n: int) -> dict[str, Any]:  # the fields the CRD's status requires
        return {"componentKind": "Deployment", "componentName": f"dgd1-{name.lower()}",
                "replicas": n, "updatedReplicas": n, "readyReplicas": n}  # fmt: skip

    status = {
        "status": {
            "state": "successful",
            "services": {
                "MockerPrefillWorker": service("MockerPrefillWorker", 2),
                "MockerDecodeWorker": service("MockerDecodeWorker", 3),
            },
        }
    }
    path = kube.path(DGD_KIND, "team", "dgd1") + "/status"
    kube.request("PATCH", path, {"fieldManager": "op"}, status, "application/merge-patch+json")
    before = len(standin.requests)
    r = run_cli(
        *base, "--prometheus-url", CLOSED, "--interval", "0.1", "--startup-s", "0", "--max-ticks", "2",
        "--metrics-port", "0", "--connector", "kubernetes", "--dgd", "dgd1",
        "--kubeconfig", kubeconfig, "-o", "json",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    summary = r.json()
    assert summary["decisions"] == {"hold_no_data": 2}
    assert "GPUs per engine from the DGD: prefill 1, decode 2" in r.stderr
    ticks = [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]
    assert [t["decision"]["prefill"] for t in ticks] == [2, 2]
    assert [t["decision"]["decode"] for t in ticks] == [3, 3]
    assert all(t["connector"]["status"] == "unchanged" for t in ticks)
    patches = [p for m, p in standin.requests[before:] if m == "PATCH"]
    assert patches == []


def test_short_run_with_unreachable_prometheus(base: list[str], tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    r = run_cli(
        *base, "--prometheus-url", CLOSED, "--interval", "0.1", "--startup-s", "1", "--max-ticks", "2",
        "--metrics-port", "0", "--connector", "virtual", "--state", state, "-o", "json",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    summary = r.json()
    assert summary["ticks"] == 2 and summary["stopped"] == "max_ticks"
    assert summary["decisions"] == {"hold_no_data": 2}
    assert summary["unknown_ticks"] == 2
    assert json.loads(state.read_text())["decision_id"] == 0  # the hold was written once
    lines = [json.loads(x) for x in r.stderr.splitlines() if x.startswith("{")]
    assert [x["tick"] for x in lines] == [1, 2]
    assert lines[0]["window"]["status"] == "unknown"


def test_sigterm_stops_after_the_current_tick(shared_data: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PROMETHEUS_ENDPOINT": CLOSED}
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "dynamo_plan", "plan", "run", "--profile", str(shared_data / H200),
            "--model", "m", "--interval", "0.5", "--startup-s", "0", "--metrics-port", str(port), "-o", "json",
        ],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        while line and not line.startswith("{"):  # warnings before the first tick's log line
            line = proc.stderr.readline()
        first = json.loads(line)
        assert first["tick"] == 1
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5.0).text
        assert "dynamo_planner_ticks_total" in metrics
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["stopped"] == "stop" and summary["ticks"] >= 1
    assert summary["metrics"] == f"http://127.0.0.1:{port}/metrics"


def test_virtual_wait_belongs_to_the_virtual_connector(base: list[str], tmp_path: Path) -> None:
    r = run_cli(*base, "--virtual-wait", "5", "--print-config")
    assert r.exit_code == 2 and "--connector virtual" in r.stderr
    state = tmp_path / "s.json"
    r = run_cli(
        *base, "--connector", "virtual", "--state", state, "--virtual-wait", "5",
        "--print-config", "-o", "json",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert r.json()["virtual_wait"] == 5.0


def _tp4_profile(shared_data: Path, tmp_path: Path) -> Path:
    """The H200 profile with a profile.json: model, 4 GPUs per engine, a 200/20 ms SLA."""
    out = tmp_path / "tp4"
    shutil.copytree(shared_data / H200, out)
    par = {"tp": 4, "gpus_per_engine": 4}
    meta = {
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "parallelism": {"prefill": par, "decode": par},
        "sla": {"isl": 2000, "osl": 200, "ttft": 200, "itl": 20},
    }
    (out / "profile.json").write_text(json.dumps(meta), encoding="utf-8")
    return out


def test_print_config_takes_model_sla_and_gpus_from_profile_json(
    shared_data: Path, tmp_path: Path
) -> None:
    """The README's `plan run` without --ttft/--itl (or --model) plans for the profile's SLA."""
    prof = _tp4_profile(shared_data, tmp_path)
    r = run_cli("plan", "run", "--profile", prof, "--print-config", "-o", "json")
    assert r.exit_code == 0, r.stderr
    assert r.stderr == ""
    s = r.json()
    assert s["model"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert (s["ttft"], s["itl"], s["isl"], s["osl"]) == (200.0, 20.0, 2000.0, 200.0)
    assert (s["prefill_engine_num_gpu"], s["decode_engine_num_gpu"]) == (4, 4)
    table = run_cli("plan", "run", "--profile", prof, "--print-config")
    assert table.exit_code == 0, table.stderr
    ttft_row = next(line for line in table.stdout.splitlines() if line.split()[:1] == ["ttft"])
    assert ttft_row.split()[1:] == ["200", "profile.json"]


def test_flags_and_config_file_override_profile_json_with_a_note(
    shared_data: Path, tmp_path: Path
) -> None:
    prof = _tp4_profile(shared_data, tmp_path)
    cfg = tmp_path / "run.yaml"
    cfg.write_text("itl: 30\nmodel: llama-3.1-8b\nmax_gpu_budget: 16\n")
    r = run_cli(
        "plan", "run", "--profile", prof, "--config", cfg, "--ttft", "500",
        "--prefill-engine-num-gpu", "1", "--print-config", "-o", "json",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    where = prof / "profile.json"
    assert r.stderr.splitlines() == [
        f"note: --ttft 500 ms overrides the profile's 200 ms ({where})",
        f"note: {cfg}'s itl: 30 ms overrides the profile's 20 ms ({where})",
        f"note: --prefill-engine-num-gpu 1 overrides the profile's 4 ({where})",
    ]  # the model is the same one by its catalogue name: no note
    s = r.json()
    assert (s["ttft"], s["itl"], s["isl"], s["model"]) == (500.0, 30.0, 2000.0, "llama-3.1-8b")
    assert (s["prefill_engine_num_gpu"], s["decode_engine_num_gpu"]) == (1, 4)


def test_profile_gpus_count_against_the_budget_before_start(
    shared_data: Path, tmp_path: Path
) -> None:
    prof = _tp4_profile(shared_data, tmp_path)
    r = run_cli("plan", "run", "--profile", prof, "--max-gpu-budget", "4", "--print-config")
    assert r.exit_code == 4
    assert "they need 8 GPUs" in r.stderr


def _not_utf8(path: Path) -> Path:
    path.write_bytes("token\n".encode("utf-16"))
    return path


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (lambda d: ["--connector", "virtual", "--state", d / "no" / "s.json"], "does not exist"),
        (lambda d: ["--connector", "virtual", "--state", d], "it is a directory"),
        (lambda d: ["--connector", "virtual", "--state", _not_utf8(d / "s.json")], "not UTF-8"),
        (lambda d: ["--prometheus-token-file", d / "absent"], "cannot read Prometheus token"),
        (lambda d: ["--prometheus-token-file", _not_utf8(d / "tok")], "not UTF-8"),
        (lambda d: ["--prometheus-ca-bundle", _not_utf8(d / "ca.pem")], "not PEM CA certificates"),
        (lambda d: ["--prometheus-ca-bundle", d], "Is a directory"),
    ],
    ids=[
        "state-folder-missing", "state-is-a-directory", "state-not-utf8", "token-missing",
        "token-not-utf8", "ca-bundle-garbage", "ca-bundle-directory",
    ],
)  # fmt: skip
def test_settings_that_cannot_work_fail_before_the_first_tick(
    base: list[str], tmp_path: Path, setting: Any, message: str
) -> None:
    """Issue 11: these used to start, log an error every tick and exit 0."""
    r = run_cli(
        *base, "--prometheus-url", CLOSED, "--interval", "0.1", "--startup-s", "0",
        "--max-ticks", "2", "--metrics-port", "0", *setting(tmp_path), "-o", "json",
    )  # fmt: skip
    assert r.exit_code == 1, r.stdout + r.stderr
    assert r.stdout == ""
    errors = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], r.stderr
    assert not any(x.startswith("{") for x in r.stderr.splitlines())  # no tick ran
    assert "Traceback" not in r.stderr


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs Linux sysfs")
def test_state_in_a_folder_nobody_can_write_fails_before_the_first_tick(base: list[str]) -> None:
    """/sys takes no new files, not even from root (a chmod'ed folder would not stop root)."""
    r = run_cli(
        *base, "--prometheus-url", CLOSED, "--interval", "0.1", "--max-ticks", "1",
        "--metrics-port", "0", "--connector", "virtual", "--state", "/sys/dynamo-plan-state.json",
    )  # fmt: skip
    assert r.exit_code == 1
    errors = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert errors == [
        "error: cannot write virtual state /sys/dynamo-plan-state.json: folder /sys: "
        "Permission denied"
    ]
    assert not any(x.startswith("{") for x in r.stderr.splitlines())
