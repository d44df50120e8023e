"""Every file or directory a command writes: a symlink's target is replaced (the link stays), a
device or FIFO is refused (exit 1, one line), ``-`` is stdout where offered, and a full disk
leaves neither a partial file nor a directory the command created.

The full disk is real: the command runs in a child process whose file-size limit
(``RLIMIT_FSIZE``, with ``SIGXFSZ`` ignored) makes a write past ``limit`` bytes fail with
``EFBIG`` halfway through the file, as ``ENOSPC`` would.
"""

from __future__ import annotations

import os
import resource
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dynamo_plan.resources import shipped_file
from tests.conftest import CliResult, run_cli

SAMPLE = Path(__file__).resolve().parents[2] / "sample_traces" / "mooncake_conversation_10min.jsonl"
DGDR_FLAGS = [
    "--name", "llama", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--backend", "vllm",
    "--isl", "3000", "--osl", "150", "--ttft", "200", "--itl", "20",
    "--profiler-image", "nvcr.io/nvidia/ai-dynamo/vllm-runtime:0.6.1",
]  # fmt: skip


def run_with_full_disk(
    cwd: Path, limit: int, *args: str | Path
) -> subprocess.CompletedProcess[str]:
    """``python -m dynamo_plan ARGS`` in ``cwd`` where no file can grow past ``limit`` bytes."""

    def limit_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    return subprocess.run(
        [sys.executable, "-m", "dynamo_plan", *(str(a) for a in args)],
        cwd=cwd,
        preexec_fn=limit_files,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def one_error_line(stderr: str) -> str:
    """The one ``error:`` line (progress lines may come before it); no traceback."""
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    return errors[0]


def _profile(shared_data: Path) -> Path:
    return shared_data / "profiles" / "h200_llama3.1-8b-fp8_tp1p_tp1d"


def _simulate(shared_data: Path, *extra: str | Path) -> list[str | Path]:
    return [
        "simulate", shipped_file("sample_traces", "azure2023_conv_10min.csv"),
        "--profile", _profile(shared_data), "--ttft", "300", "--itl", "20",
        "--rate-scale", "10", "--interval", "6", "--startup-s", "6", *extra,
    ]  # fmt: skip


def test_simulate_requests_csv_on_a_full_disk_keeps_the_old_file(
    shared_data: Path, tmp_path: Path
) -> None:
    csv = tmp_path / "requests.csv"
    csv.write_text("old,content\n")
    result = run_with_full_disk(
        tmp_path, 4096, *_simulate(shared_data, "--requests-csv", csv, "-o", "json")
    )
    assert result.returncode == 1, result.stderr
    assert "File too large" in one_error_line(result.stderr) and "Traceback" not in result.stderr
    assert csv.read_text() == "old,content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["requests.csv"]


def test_simulate_outputs_through_symlinks_and_onto_a_device(
    shared_data: Path, tmp_path: Path
) -> None:
    real = tmp_path / "data" / "requests.csv"
    real.parent.mkdir()
    real.write_text("old\n")
    link = tmp_path / "requests.csv"
    link.symlink_to(real)
    png_link = tmp_path / "plot.png"
    png_link.symlink_to(tmp_path / "data" / "new.png")  # dangling: the target is created
    result = run_cli(*_simulate(shared_data, "--requests-csv", link, "--plot", png_link))
    assert result.exit_code == 0, result.stderr
    assert link.is_symlink() and png_link.is_symlink()
    assert real.read_text().startswith("request,policy,")
    assert (tmp_path / "data" / "new.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    null = tmp_path / "null.csv"
    null.symlink_to("/dev/null")
    refused = run_cli(*_simulate(shared_data, "--requests-csv", null))
    assert refused.exit_code == 1
    assert one_error_line(refused.stderr).endswith(
        f"refusing to write over {null} (-> /dev/null): it is a character device"
    )
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode) and null.is_symlink()


def test_backtest_csv_on_a_full_disk_leaves_no_partial_file(tmp_path: Path) -> None:
    result = run_with_full_disk(
        tmp_path, 1024, "predict", "backtest", SAMPLE, "--interval", "30",
        "--predictors", "constant", "--csv", "f.csv", "-o", "json",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "f.csv: File too large" in one_error_line(result.stderr)
    assert list(tmp_path.iterdir()) == []


def test_backtest_csv_into_a_fifo_and_plot_onto_a_device_are_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    null = tmp_path / "null.png"
    null.symlink_to("/dev/null")
    # a reader, so that a writer that (wrongly) opens the FIFO does not block forever
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        for flag, target, kind in (("--csv", fifo, "FIFO"), ("--plot", null, "character device")):
            result = run_cli(
                "predict", "backtest", SAMPLE, "--interval", "30", "--predictors", "constant",
                flag, target,
            )  # fmt: skip
            assert result.exit_code == 1, result.stderr
            assert f"it is a {kind}" in one_error_line(result.stderr)
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and stat.S_ISCHR(os.stat(null).st_mode)


@pytest.mark.parametrize(
    ("command", "flag"),
    [
        ("simulate", "--plot"),
        ("simulate", "--requests-csv"),
        ("backtest", "--csv"),
        ("backtest", "--plot"),
        ("replay", "--csv"),
    ],
)
def test_an_output_that_is_a_directory_is_refused_before_the_work(
    shared_data: Path, tmp_path: Path, command: str, flag: str
) -> None:
    """Exit 1 (bad input, like every other command), not Click's exit 2, and refused before
    the simulation, backtest or replay runs: no trace is read, no endpoint is asked."""
    target = tmp_path / "out"
    target.mkdir()
    args: list[str | Path] = {
        "simulate": _simulate(shared_data),
        "backtest": ["predict", "backtest", SAMPLE, "--interval", "30", "--predictors", "constant"],
        "replay": [
            "load",
            "replay",
            tmp_path / "no-such-trace.jsonl",
            "--url",
            "http://127.0.0.1:9",
        ],
    }[command]
    result = run_cli(*args, flag, target)
    assert result.exit_code == 1, result.stderr
    assert one_error_line(result.stderr).endswith(
        f"refusing to write over {target}: it is a directory"
    )
    assert target.is_dir() and list(target.iterdir()) == []


def test_demo_on_a_full_disk_leaves_no_directory(tmp_path: Path) -> None:
    result = run_with_full_disk(tmp_path, 2000, "demo", "--quick", "--out", "a/b")
    assert result.returncode == 1, result.stderr
    assert "File too large" in one_error_line(result.stderr)
    assert list(tmp_path.iterdir()) == []


def test_demo_into_an_existing_directory_keeps_it(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep")
    result = run_with_full_disk(tmp_path, 2000, "demo", "--quick", "--out", "out")
    assert result.returncode == 1, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["mine.txt"]


def _dgdr(tmp_path: Path) -> Path:
    from tests.deploy.test_workflow import write_dgdr

    return write_dgdr(tmp_path / "d.yaml")


def test_dgdr_run_no_cluster_on_a_full_disk_leaves_no_directory(tmp_path: Path) -> None:
    dgdr = _dgdr(tmp_path)
    result = run_with_full_disk(tmp_path, 2000, "dgdr", "run", dgdr, "--no-cluster", "--out", "x/y")
    assert result.returncode == 1, result.stderr
    assert "File too large" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.yaml"]


def test_dgdr_run_no_cluster_failing_after_the_profile_removes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the profile is written (here: rendering) removes the new --out whole."""
    from dynamo_plan.errors import InputError
    from dynamo_plan.profiler import workflow

    def broken_render(*_: object, **__: object) -> object:
        raise InputError("render failed")

    monkeypatch.setattr(workflow, "render", broken_render)
    dgdr = _dgdr(tmp_path)
    result = run_cli("dgdr", "run", dgdr, "--no-cluster", "--out", tmp_path / "x" / "y")
    assert result.exit_code == 1 and "render failed" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.yaml"]


def test_profile_out_symlink_replaces_the_target_directory(tmp_path: Path) -> None:
    link = tmp_path / "prof"
    link.symlink_to(tmp_path / "real")
    args = ["profile", "--offline", "--model", "llama-3.1-8b", "--system", "h200_sxm",
            "--backend", "vllm", "--isl", "3000", "--osl", "150", "--ttft", "200", "--itl", "20",
            "--out", link, "--no-plots", "-o", "json"]  # fmt: skip
    for _ in range(2):  # created, then replaced
        result = run_cli(*args)
        assert result.exit_code == 0, result.stderr
        assert link.is_symlink()
        assert (tmp_path / "real" / "profile.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prof", "real"]


def test_dgdr_create_file_symlink_device_and_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tmp_path / "real.yaml"
    real.write_text("old\n")
    real.chmod(0o600)
    link = tmp_path / "link.yaml"
    link.symlink_to(real.name)
    result = run_cli("dgdr", "create", *DGDR_FLAGS, "-f", link)
    assert result.exit_code == 0, result.stderr
    assert link.is_symlink() and yaml.safe_load(real.read_text())["metadata"]["name"] == "llama"
    assert stat.S_IMODE(real.stat().st_mode) == 0o600

    null = tmp_path / "null.yaml"
    null.symlink_to("/dev/null")
    refused = run_cli("dgdr", "create", *DGDR_FLAGS, "-f", null)
    assert refused.exit_code == 1 and refused.stdout == ""
    assert "it is a character device" in one_error_line(refused.stderr)
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)

    monkeypatch.chdir(tmp_path)
    dash = run_cli("dgdr", "create", *DGDR_FLAGS, "-f", "-")
    assert dash.exit_code == 0, dash.stderr
    assert yaml.safe_load(dash.stdout)["kind"] == "DynamoGraphDeploymentRequest"
    assert not (tmp_path / "-").exists()


def test_generate_dgd_dash_is_stdout_and_a_directory_is_refused(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dgdr = tmp_path / "dgdr.yaml"
    dgdr.write_text(run_cli("dgdr", "create", *DGDR_FLAGS).stdout)
    monkeypatch.chdir(tmp_path)
    base = ["generate-dgd", "--dgdr", dgdr, "--profile", _profile(shared_data)]
    dash = run_cli(*base, "-f", "-")
    assert dash.exit_code == 0, dash.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(dash.stdout)]
    assert kinds[-1] == "DynamoGraphDeployment"
    assert not (tmp_path / "-").exists()
    (tmp_path / "dir").mkdir()
    refused = run_cli(*base, "-f", tmp_path / "dir")
    assert refused.exit_code == 1 and "it is a directory" in one_error_line(refused.stderr)


def test_trace_convert_through_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real.jsonl"
    real.write_text("old\n")
    link = tmp_path / "out.jsonl"
    link.symlink_to(real)
    result: CliResult = run_cli("trace", "convert", SAMPLE, "--out", link)
    assert result.exit_code == 0, result.stderr
    assert link.is_symlink() and real.read_text().startswith('{"timestamp": 0,')
