"""Trace readers: real traces, bundled samples, gz / directory / glob input, bad files."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from dynamo_plan.errors import InputError
from dynamo_plan.resources import shipped_dir
from dynamo_plan.trace import Trace, detect_format, load_trace
from tests.trace.cases import (
    AZURE_HEADER,
    BAD_FILES,
    GOOD_AZURE,
    GOOD_MOONCAKE,
    REAL_TRACES,
    write,
)


def _records_in(path: Path) -> list[str]:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return lines[1:] if path.suffix == ".csv" else lines


def _azure_ms(stamp: str) -> float:
    """Reference parse: fromisoformat (microseconds) + the 7th fractional digit, as UTC."""
    date, frac = stamp.split(".")
    moment = datetime.fromisoformat(date + "+00:00")
    return moment.timestamp() * 1000.0 + float("0." + frac) * 1000.0


@pytest.mark.parametrize(("name", "fmt", "count"), REAL_TRACES, ids=[t[0] for t in REAL_TRACES])
def test_real_traces(shared_data: Path, name: str, fmt: str, count: int) -> None:
    path = shared_data / "traces" / name
    assert detect_format(path) == fmt
    trace = load_trace([path])
    assert trace.fmt == fmt
    assert trace.num_requests == count == len(trace)
    assert trace.sources == (str(path),)
    assert trace.skipped_lines == 0 and trace.step_s is None
    assert np.all(np.diff(trace.timestamp_ms) >= 0)
    assert np.all(trace.weight == 1.0)
    for arr in (trace.input_length, trace.output_length):
        assert np.all(np.isfinite(arr)) and np.all(arr >= 0)


@pytest.mark.parametrize("name", ["mooncake_conversation_10min.jsonl", "azure2023_conv_10min.csv"])
def test_bundled_samples_match_their_lines(name: str) -> None:
    path = shipped_dir("sample_traces") / name
    records = _records_in(path)
    trace = load_trace([path])
    assert len(trace) == len(records)
    first, last = records[0], records[-1]
    if trace.fmt == "mooncake":
        obj = json.loads(last)
        assert trace.timestamp_ms[-1] == obj["timestamp"]
        assert trace.input_length[-1] == obj["input_length"]
        assert trace.output_length[-1] == obj["output_length"]
    else:
        stamp, ctx, gen = first.split(",")
        assert trace.timestamp_ms[0] == pytest.approx(_azure_ms(stamp), abs=1e-3)
        assert (trace.input_length[0], trace.output_length[0]) == (float(ctx), float(gen))


def test_azure_timestamps_keep_seven_digits(tmp_path: Path) -> None:
    stamps = ["2023-11-16 18:17:03.9799600", "2023-11-16 18:17:03.9799601", "2023-11-16 18:17:04"]
    path = write(tmp_path / "a.csv", AZURE_HEADER + "".join(f"{s},1,1\n" for s in stamps))
    trace = load_trace([path])
    expected = [_azure_ms(stamps[0]), _azure_ms(stamps[1]), _azure_ms(stamps[2] + ".0")]
    np.testing.assert_allclose(trace.timestamp_ms, expected, rtol=0, atol=1e-3)
    assert trace.timestamp_ms[1] > trace.timestamp_ms[0]


def test_gzip_directory_and_glob_inputs(tmp_path: Path) -> None:
    sample = shipped_dir("sample_traces") / "mooncake_conversation_10min.jsonl"
    lines = sample.read_text().splitlines(keepends=True)
    half = len(lines) // 2
    folder = tmp_path / "parts"
    write(folder / "a.jsonl", "".join(lines[:half]))
    write(folder / "b.jsonl.gz", gzip.compress("".join(lines[half:]).encode()))
    write(folder / "notes.md", "not a trace")
    whole = load_trace([sample])

    by_dir = load_trace([folder])
    by_glob = load_trace([str(folder / "*.jsonl*")])
    by_files = load_trace([folder / "a.jsonl", folder / "b.jsonl.gz"])
    for trace in (by_dir, by_glob, by_files):
        assert trace.sources == (str(folder / "a.jsonl"), str(folder / "b.jsonl.gz"))
        for name in ("timestamp_ms", "input_length", "output_length"):
            np.testing.assert_array_equal(getattr(trace, name), getattr(whole, name))
    assert detect_format(folder / "b.jsonl.gz") == "mooncake"


def test_single_path_string_is_one_file(tmp_path: Path) -> None:
    path = write(tmp_path / "t.jsonl", GOOD_MOONCAKE)
    assert len(load_trace(str(path))) == 1  # type: ignore[arg-type]


def test_bom_crlf_and_quoted_csv(tmp_path: Path) -> None:
    content = '\ufeffTIMESTAMP,ContextTokens,GeneratedTokens\r\n"2023-11-16 18:17:03.5","12",3\r\n'
    trace = load_trace([write(tmp_path / "a.csv", content)])
    assert (trace.input_length[0], trace.output_length[0]) == (12.0, 3.0)


@pytest.mark.parametrize(
    ("case_id", "name", "content", "line", "fragment"), BAD_FILES, ids=[c[0] for c in BAD_FILES]
)
def test_bad_files_name_file_and_line(
    tmp_path: Path, case_id: str, name: str, content: bytes, line: int | None, fragment: str
) -> None:
    path = write(tmp_path / name, content)
    with pytest.raises(InputError) as info:
        load_trace([path])
    message = str(info.value)
    assert fragment in message
    assert message.startswith(f"{path}:{line}:" if line is not None else f"{path}")
    assert "\n" not in message


def test_skip_bad_lines_counts_them(tmp_path: Path) -> None:
    content = (
        GOOD_MOONCAKE
        + '{"timestamp": 1, "input_length": -1, "output_length": 1}\n'
        + "\n"
        + b"\xff\xfe".decode("latin-1")
        + "\n"
        + '{"timestamp": 2, "input_length": 5, "output_length": 1}\n'
        + '{"timestamp": 3, "input_len'
    )
    path = write(tmp_path / "t.jsonl", content.encode("latin-1"))
    with pytest.raises(InputError, match=r":2: "):
        load_trace([path])
    trace = load_trace([path], skip_bad_lines=True)
    assert trace.skipped_lines == 3
    np.testing.assert_array_equal(trace.input_length, [10.0, 5.0])


def test_all_lines_bad_is_an_error_even_when_skipping(tmp_path: Path) -> None:
    path = write(tmp_path / "t.jsonl", "nope\nnope\n")
    with pytest.raises(InputError, match=r"no records \(2 bad lines skipped\)"):
        load_trace([path], "mooncake", skip_bad_lines=True)


def test_unsorted_timestamps_are_sorted_stably(tmp_path: Path) -> None:
    rows = [(5, 1), (1, 2), (5, 3), (1, 4), (3, 5)]
    content = "".join(
        json.dumps({"timestamp": t, "input_length": i, "output_length": 1}) + "\n" for t, i in rows
    )
    trace = load_trace([write(tmp_path / "t.jsonl", content)])
    assert trace.was_unsorted
    np.testing.assert_array_equal(trace.timestamp_ms, [1, 1, 3, 5, 5])
    np.testing.assert_array_equal(trace.input_length, [2, 4, 5, 1, 3])


def test_rate_series(tmp_path: Path) -> None:
    content = "timestamp,requests,isl,osl\n0,10,100,20\n60,0,,\n120,5,200,nan\n180,0,nan,nan\n"
    with pytest.raises(InputError, match=r"r\.csv:4: 'osl' must be finite"):
        load_trace([write(tmp_path / "r.csv", content)])
    content = content.replace("200,nan", "200,30")
    trace = load_trace([write(tmp_path / "r.csv", content)])
    assert trace.fmt == "rate" and trace.step_s == 60.0
    np.testing.assert_array_equal(trace.timestamp_ms, [0, 60_000, 120_000, 180_000])
    np.testing.assert_array_equal(trace.weight, [10, 0, 5, 0])
    assert np.isnan(trace.input_length[1]) and trace.input_length[2] == 200
    assert trace.num_requests == 15


def test_rate_series_without_lengths_and_with_wallclock(tmp_path: Path) -> None:
    content = "Timestamp,Requests\n2024-01-01T00:00:00Z,4\n2024-01-01T00:05:00Z,6\n"
    trace = load_trace([write(tmp_path / "r.csv", content)])
    assert trace.step_s == 300.0
    assert np.all(np.isnan(trace.input_length))


def test_rate_series_needs_isl_when_requests(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "timestamp,requests,isl,osl\n0,3,,5\n60,1,2,3\n")
    with pytest.raises(InputError, match=r"r\.csv:2: 'isl' is empty but requests > 0"):
        load_trace([path])


def test_rate_series_needs_two_timestamps(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "timestamp,requests\n0,3\n")
    with pytest.raises(InputError, match="at least 2 distinct timestamps"):
        load_trace([path])


def test_mixed_formats_are_refused(tmp_path: Path) -> None:
    a = write(tmp_path / "a.jsonl", GOOD_MOONCAKE)
    b = write(tmp_path / "b.csv", AZURE_HEADER + GOOD_AZURE)
    with pytest.raises(InputError, match="must have one format"):
        load_trace([a, b])


def test_forced_format_reports_line_one(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", AZURE_HEADER + GOOD_AZURE)
    with pytest.raises(InputError, match=r"a\.csv:1: invalid JSON"):
        load_trace([path], "mooncake")
    with pytest.raises(InputError, match=r"a\.csv:1: expected a CSV header .*\(rate\)"):
        load_trace([path], "rate")
    with pytest.raises(InputError, match="unknown trace format"):
        load_trace([path], "parquet")  # type: ignore[arg-type]


def test_missing_inputs(tmp_path: Path) -> None:
    (tmp_path / "empty_dir").mkdir()
    cases = {
        str(tmp_path / "nope.jsonl"): "no such file",
        str(tmp_path / "empty_dir"): "contains no trace files",
        str(tmp_path / "*.nothing"): "matches no files",
    }
    for arg, fragment in cases.items():
        with pytest.raises(InputError, match=fragment):
            load_trace([arg])
    with pytest.raises(InputError, match="no trace file given"):
        load_trace([])


def test_corrupt_gzip_names_the_line(tmp_path: Path) -> None:
    data = gzip.compress((GOOD_MOONCAKE * 5000).encode())
    path = write(tmp_path / "t.jsonl.gz", data[: len(data) // 2])
    with pytest.raises(InputError, match=r"t\.jsonl\.gz:\d+: cannot read gzip data"):
        load_trace([path])


def test_trace_is_immutable_and_checked() -> None:
    trace = Trace(np.array([0.0, 1.0]), [1, 2], [3, 4], [1, 1], ("x",), "mooncake")
    with pytest.raises(ValueError):
        trace.timestamp_ms[0] = 5.0
    with pytest.raises(ValueError, match="sorted"):
        Trace(np.array([1.0, 0.0]), [1, 2], [3, 4], [1, 1], ("x",), "mooncake")
    with pytest.raises(ValueError, match="equal lengths"):
        Trace(np.array([0.0]), [1, 2], [3, 4], [1, 1], ("x",), "mooncake")
