"""write_mooncake: round trip, integers preserved, gzip, atomic replacement, rate refused."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from dynamo_plan.errors import InputError
from dynamo_plan.resources import shipped_dir
from dynamo_plan.trace import load_trace, write_mooncake
from tests.trace.cases import write


def test_mooncake_round_trip(tmp_path: Path) -> None:
    source = load_trace([shipped_dir("sample_traces") / "mooncake_conversation_10min.jsonl"])
    out = tmp_path / "out.jsonl"
    assert write_mooncake(source, out) == len(source)
    again = load_trace([out])
    for name in ("timestamp_ms", "input_length", "output_length"):
        np.testing.assert_array_equal(
            getattr(again, name),
            getattr(source, name) - (source.timestamp_ms[0] if name == "timestamp_ms" else 0),
        )
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left behind


def test_azure_to_mooncake_is_relative_and_integral(shared_data: Path, tmp_path: Path) -> None:
    source = load_trace([shared_data / "traces" / "azure2023_code_15min.csv"])
    out = tmp_path / "code.jsonl.gz"
    write_mooncake(source, out)
    with gzip.open(out, "rt") as handle:
        records = [json.loads(line) for line in handle]
    assert len(records) == len(source)
    assert records[0]["timestamp"] == 0
    assert all(isinstance(r["input_length"], int) for r in records)
    assert all(isinstance(r["output_length"], int) for r in records)
    times = np.array([r["timestamp"] for r in records], dtype=float)
    np.testing.assert_allclose(times, source.timestamp_ms - source.timestamp_ms[0], atol=1e-3)
    assert np.all(np.diff(times) >= 0)


def test_existing_file_is_replaced(tmp_path: Path) -> None:
    out = write(tmp_path / "out.jsonl", "old content\n")
    source = load_trace(
        [
            write(
                tmp_path / "in.csv",
                "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.5,12,3\n",
            )
        ]
    )
    assert write_mooncake(source, out) == 1
    assert json.loads(out.read_text()) == {"timestamp": 0, "input_length": 12, "output_length": 3}


def test_rate_series_is_refused(tmp_path: Path) -> None:
    source = load_trace([write(tmp_path / "r.csv", "timestamp,requests\n0,3\n60,4\n")])
    out = tmp_path / "out.jsonl"
    with pytest.raises(InputError, match=r"rate series.*not individual requests"):
        write_mooncake(source, out)
    assert not out.exists()


def test_missing_directory(tmp_path: Path) -> None:
    source = load_trace([shipped_dir("sample_traces") / "mooncake_conversation_10min.jsonl"])
    with pytest.raises(InputError, match="does not exist"):
        write_mooncake(source, tmp_path / "no" / "out.jsonl")
