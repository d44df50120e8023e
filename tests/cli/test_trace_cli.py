"""``dynamo-plan trace stats`` and ``trace convert``: JSON output, errors, warnings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dynamo_plan.trace import load_trace
from tests.conftest import run_cli
from tests.trace.cases import BAD_FILES, GOOD_MOONCAKE, REAL_TRACES, write

COUNT = {name: count for name, _, count in REAL_TRACES}


def _one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(("name", "fmt", "count"), REAL_TRACES, ids=[t[0] for t in REAL_TRACES])
def test_stats_json_on_real_traces(shared_data: Path, name: str, fmt: str, count: int) -> None:
    result = run_cli("trace", "stats", shared_data / "traces" / name, "-o", "json")
    assert result.exit_code == 0, result.stderr
    stats = result.json()
    assert stats["requests"] == count and stats["format"] == fmt
    assert stats["files"] == [str(shared_data / "traces" / name)]
    assert stats["rate_rps"]["peak"] >= stats["rate_rps"]["mean"] > 0
    assert set(stats["index_of_dispersion"]) == {"1s", "10s", "60s"}


def test_stats_of_several_files_is_one_object(shared_data: Path) -> None:
    names = ("azure2023_code_15min.csv", "azure2023_conv_5min.csv")
    files = [shared_data / "traces" / n for n in names]
    result = run_cli("trace", "stats", *files, "--interval", "30", "-o", "json")
    assert result.exit_code == 0, result.stderr
    stats = result.json()
    assert stats["requests"] == COUNT[names[0]] + COUNT[names[1]] and stats["interval_s"] == 30.0
    assert stats["files"] == [str(f) for f in files]
    assert stats["was_unsorted"] is True
    assert "not in ascending order" in result.stderr


def test_stats_table_and_yaml(shared_data: Path) -> None:
    path = shared_data / "traces" / "mooncake_synthetic_5min.jsonl"
    table = run_cli("trace", "stats", path)
    assert table.exit_code == 0
    assert "ISL" in table.stdout and "peak rate" in table.stdout
    as_yaml = run_cli("trace", "stats", path, "-o", "yaml")
    assert yaml.safe_load(as_yaml.stdout)["requests"] == COUNT[path.name]


@pytest.mark.parametrize(
    ("case_id", "name", "content", "line", "fragment"), BAD_FILES, ids=[c[0] for c in BAD_FILES]
)
@pytest.mark.parametrize("command", ["stats", "convert"])
def test_bad_files_exit_1_with_line_number(
    tmp_path: Path,
    command: str,
    case_id: str,
    name: str,
    content: bytes,
    line: int | None,
    fragment: str,
) -> None:
    path = write(tmp_path / name, content)
    extra = ["--out", str(tmp_path / "out.jsonl")] if command == "convert" else []
    result = run_cli("trace", command, path, *extra)
    assert result.exit_code == 1
    message = _one_error_line(result.stderr)
    assert fragment in message
    if line is not None:
        assert f"{path}:{line}:" in message
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "out.jsonl").exists()


def test_skip_bad_lines_warns_with_count(tmp_path: Path) -> None:
    path = write(tmp_path / "t.jsonl", GOOD_MOONCAKE + "oops\n" + GOOD_MOONCAKE + "{]\n")
    strict = run_cli("trace", "stats", path, "-o", "json")
    assert strict.exit_code == 1 and f"{path}:2:" in strict.stderr
    lenient = run_cli("trace", "stats", path, "--skip-bad-lines", "-o", "json")
    assert lenient.exit_code == 0
    assert lenient.json()["skipped_lines"] == 2 and lenient.json()["requests"] == 2
    assert "warning: skipped 2 bad line(s)" in lenient.stderr


def test_convert_writes_mooncake(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "traces" / "azure2023_conv_5min.csv"
    out = tmp_path / "conv.jsonl"
    result = run_cli("trace", "convert", source, "--out", out)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert f"wrote {COUNT[source.name]} requests to {out}" in result.stderr
    trace = load_trace([out])
    assert trace.fmt == "mooncake" and trace.num_requests == COUNT[source.name]
    first = json.loads(out.read_text().splitlines()[0])
    assert first["timestamp"] == 0


def test_convert_json_summary(tmp_path: Path) -> None:
    """``-o`` is the summary's format on ``trace convert`` too, as everywhere (never a file)."""
    source = write(tmp_path / "in.jsonl", GOOD_MOONCAKE * 3)
    out = tmp_path / "out.jsonl"
    result = run_cli("trace", "convert", source, "--out", out, "-o", "json", "--format", "mooncake")
    assert result.exit_code == 0, result.stderr
    summary = result.json()
    assert summary["rows"] == 3 and summary["output"] == str(out)
    assert summary["format"] == "mooncake" and summary["files"] == [str(source)]
    as_yaml = run_cli("trace", "convert", source, "--out", out, "-o", "yaml")
    assert as_yaml.exit_code == 0 and "rows: 3" in as_yaml.stdout


def test_convert_dash_o_is_a_format_not_a_file(tmp_path: Path) -> None:
    """The old ``-o OUT.jsonl`` is a usage error (exit 2) and writes nothing."""
    source = write(tmp_path / "in.jsonl", GOOD_MOONCAKE)
    target = tmp_path / "out.jsonl"
    result = run_cli("trace", "convert", source, "-o", target)
    assert result.exit_code == 2
    assert not target.exists()
    assert run_cli("trace", "convert", source, "--out", target, "-o", target).exit_code == 2


def test_convert_refuses_rate_series(tmp_path: Path) -> None:
    source = write(tmp_path / "r.csv", "timestamp,requests,isl,osl\n0,3,10,2\n60,4,10,2\n")
    result = run_cli("trace", "convert", source, "--out", tmp_path / "out.jsonl")
    assert result.exit_code == 1
    assert "rate series" in _one_error_line(result.stderr)
    assert not (tmp_path / "out.jsonl").exists()


def test_rate_series_interval_finer_than_step(tmp_path: Path) -> None:
    source = write(tmp_path / "r.csv", "timestamp,requests\n0,3\n300,4\n600,1\n")
    result = run_cli("trace", "stats", source, "-o", "json")
    assert result.exit_code == 1
    assert "finer than the rate series step 300 s" in _one_error_line(result.stderr)
    ok = run_cli("trace", "stats", source, "--interval", "300", "-o", "json")
    assert ok.exit_code == 0 and ok.json()["requests"] == 8


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    source = write(tmp_path / "in.jsonl", GOOD_MOONCAKE)
    assert run_cli("trace", "stats", source, "--format", "parquet").exit_code == 2
    assert run_cli("trace", "convert", source).exit_code == 2  # --out is required
    assert run_cli("trace", "stats").exit_code == 2


def test_missing_file_exit_1(tmp_path: Path) -> None:
    result = run_cli("trace", "stats", tmp_path / "nope.jsonl")
    assert result.exit_code == 1
    assert "no such file" in _one_error_line(result.stderr)


def test_error_text_with_brackets_is_printed_verbatim(tmp_path: Path) -> None:
    path = write(tmp_path / "t.jsonl", GOOD_MOONCAKE + '{"timestamp": "[/x]"}\n')
    result = run_cli("trace", "stats", path)
    assert result.exit_code == 1
    assert "'[/x]'" in _one_error_line(result.stderr)
