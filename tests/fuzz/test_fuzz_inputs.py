"""Fuzzing every command that reads a file: garbage and mutated real traces.

Contract for each command in :data:`FILE_COMMANDS`: whatever the file holds, the command exits 0
(the file happened to be valid) or 1, and on 1 stderr is ONE readable line starting with
``error:`` — never a traceback, never a hang.

To fuzz another command, add an entry to ``FILE_COMMANDS`` below, e.g.::

    FileCommand("predict backtest", lambda path: ["predict", "backtest", str(path), "-o", "json"]),

Every garbage test here then runs on it. The callable gets the path of the fuzzed input file (in a
fresh temporary directory, which the command may also write into) and returns the CLI arguments
after ``dynamo-plan``. Two optional fields adapt the contract to commands that read something
other than a trace:

* ``exit_codes``: the exits allowed (default ``(0, 1)``); every non-zero exit must still be ONE
  ``error:`` line. Entries that widen it say why next to it (e.g. ``load replay`` against an
  unreachable URL: a bad trace exits 1, a good one reaches the network and exits 3).
* ``seeds``: valid files of the command's own format (a config YAML, a state JSON); the mutation
  test then starts from them (:func:`test_mutated_seeds`, which also checks that each seed is
  accepted) instead of from the shared real traces (:func:`test_mutated_real_files`).
"""

from __future__ import annotations

import gzip
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SHARED_DATA, CliResult, run_cli
from tests.trace.cases import REAL_TRACES


class FileCommand(NamedTuple):
    """One fuzzed command (module docstring): ``args(path)`` = its CLI arguments."""

    label: str
    args: Callable[[Path], list[str]]
    exit_codes: tuple[int, ...] = (0, 1)
    seeds: Callable[[], dict[str, bytes]] | None = None


def _config_seeds() -> dict[str, bytes]:
    """``plan run --config`` files: a hand-written one, a kubernetes one, and what
    ``plan run --print-config -o yaml`` writes (every key)."""
    profile = SHARED_DATA / "profiles" / "h200_llama3.1-8b-fp8_tp1p_tp1d"
    printed = run_cli(
        "plan", "run", "--profile", profile, "--model", "llama-3.1-8b", "--connector", "virtual",
        "--state", "state.json", "--interval", "30", "--print-config", "-o", "yaml",
    )  # fmt: skip
    assert printed.exit_code == 0, printed.stderr
    return {
        "virtual.yaml": (
            f"# plan run --config\nprofile: {profile}\nmodel: llama-3.1-8b\n"
            "prometheus_url: http://127.0.0.1:9090\nconnector: virtual\nstate: state.json\n"
            "interval: 30\nttft: 200\nitl: 20.5\nmax_gpu_budget: 16\nload_quantile: 0.9\n"
            "predictor: kalman\nno_correction: false\n"
        ).encode(),
        "kubernetes.yaml": (
            f"profile: {profile}\nmodel: m\nnamespace: dynamo\nconnector: kubernetes\n"
            "dgd: llama\nkube_namespace: inference\nready_timeout: 900\nmax_gpu_budget: -1\n"
            "metrics_port: 0\nmax_ticks: 3\n"
        ).encode(),
        "printed.yaml": printed.stdout.encode(),
    }


def _state_seeds() -> dict[str, bytes]:
    """Virtual connector state files as the planner and ``virtual complete`` write them."""
    acked = {"decision_id": 3, "num_prefill_workers": 2, "num_decode_workers": 4}
    return {
        "pending.json": json.dumps({**acked, "scaled_decision_id": 2}, indent=2).encode(),
        "acked.json": json.dumps({**acked, "scaled_decision_id": 3}).encode(),
        "first.json": b'{"decision_id": 0, "num_prefill_workers": 1, "num_decode_workers": 1}\n',
    }


def _sample_trace_seeds() -> dict[str, bytes]:
    """The first SEED_LINES lines of the bundled sample traces (Mooncake JSONL, Azure CSV)."""
    folder = Path(__file__).resolve().parents[2] / "sample_traces"
    out = {}
    for name in ("mooncake_conversation_10min.jsonl", "azure2023_conv_10min.csv"):
        with (folder / name).open("rb") as handle:
            out[name] = b"".join(handle.readline() for _ in range(SEED_LINES))
    return out


FILE_COMMANDS: list[FileCommand] = [
    FileCommand("trace stats", lambda path: ["trace", "stats", str(path), "-o", "json"]),
    FileCommand(
        "trace convert",
        lambda path: ["trace", "convert", str(path), "--out", str(path.parent / "converted.jsonl")],
    ),
    FileCommand("predict backtest", lambda path: ["predict", "backtest", str(path), "-o", "json"]),
    FileCommand(
        # static (cheap ticks) and day-long intervals: a mutated timestamp far in the future
        # must not make the fuzz slow; the SLA is loose so any profile shape is feasible
        "simulate",
        lambda path: [
            "simulate",
            str(path),
            "--profile",
            str(SHARED_DATA / "profiles" / "h200_llama3.1-8b-fp8_tp1p_tp1d"),
            "--ttft",
            "10000",
            "--itl",
            "100",
            "--policy",
            "static",
            "--interval",
            "86400",
            "--requests-csv",
            str(path.parent / "requests.csv"),
            "-o",
            "json",
        ],
    ),
    FileCommand("dgdr validate", lambda path: ["dgdr", "validate", str(path), "-o", "json"]),
    FileCommand(
        # 2: a required setting (profile, model) missing from the file is a usage error, as the
        # missing flag is; 4: a valid file whose max_gpu_budget cannot hold min_endpoint engines
        "plan run --config",
        lambda path: ["plan", "run", "--config", str(path), "--print-config", "-o", "json"],
        exit_codes=(0, 1, 2, 4),
        seeds=_config_seeds,
    ),
    FileCommand(
        # nothing listens on port 1: a bad trace exits 1 before any request, a good one gets as
        # far as the endpoint probe and exits 3 (an outside service failed); never 0
        "load replay",
        lambda path: ["load", "replay", str(path), "--url", "http://127.0.0.1:1", "-o", "json"],
        exit_codes=(1, 3),
        seeds=_sample_trace_seeds,
    ),
    FileCommand(
        # a malformed state file is bad input (issue 11: it was exit 3): InputError, exit 1
        "virtual get",
        lambda path: ["virtual", "get", "--state", str(path), "-o", "json"],
        exit_codes=(0, 1),
        seeds=_state_seeds,
    ),
    FileCommand(
        # a GPU spec YAML (issue 11: binary / UTF-16 specs gave a UnicodeDecodeError traceback)
        "estimate --gpu-spec",
        lambda path: [
            "estimate",
            "-m",
            "llama-3.1-8b",
            "--gpu-spec",
            str(path),
            "--dtype",
            "bf16",
            "--isl",
            "1000",
            "-o",
            "json",
        ],
        seeds=lambda: {
            "mi300x.yaml": b"bf16_tflops: 1307\nfp8_tflops: 2615\nhbm_gbps: 5300\nhbm_gib: 192\n"
            b"nvlink_gbps: 64\n",
            "h100.yaml": b"# H100 SXM\nbf16_tflops: 989.5\nfp8_tflops: 1979\nhbm_gbps: 3350\n"
            b"hbm_gib: 80\nnvlink_gbps: 900\n",
        },
    ),
    FileCommand(
        # a Hugging Face config.json read for the architecture
        "estimate --model-config",
        lambda path: [
            "estimate",
            "--model-config",
            str(path),
            "-s",
            "h200_sxm",
            "--batch",
            "4",
            "--context",
            "100",
            "-o",
            "json",
        ],
        seeds=lambda: {
            "config.json": b'{"num_hidden_layers": 2, "hidden_size": 256, "num_attention_heads": 4,'
            b' "intermediate_size": 512, "vocab_size": 1000}',
            "gqa.json": b'{"num_hidden_layers": 4, "hidden_size": 512, "num_attention_heads": 8, '
            b'"num_key_value_heads": 2, "intermediate_size": 1024, "vocab_size": 32000}\n',
        },
    ),
    FileCommand(
        # the DGDR generate-dgd renders (a mutated model or backend that no longer matches the
        # profile is refused: 1)
        "generate-dgd --dgdr",
        lambda path: [
            "generate-dgd",
            "--dgdr",
            str(path),
            "--profile",
            str(SHARED_DATA / "profiles" / "h200_llama3.1-8b-fp8_tp1p_tp1d"),
            "-f",
            str(path.parent / "dgd.yaml"),
        ],
        seeds=lambda: {
            "dgdr.yaml": b"apiVersion: nvidia.com/v1alpha1\nkind: DynamoGraphDeploymentRequest\n"
            b"metadata:\n  name: llama\nspec:\n  model: meta-llama/Llama-3.1-8B-Instruct\n"
            b"  backend: vllm\n  profilingConfig:\n    profilerImage: nvcr.io/x/profiler:1\n"
            b"    config:\n      sla: {isl: 1000, osl: 100, ttft: 300.0, itl: 20.0}\n"
            b"  autoApply: false\n",
        },
    ),
]

SUFFIXES = [".jsonl", ".csv", ".jsonl.gz"]
SEED_LINES = 50
MAX_BYTES = 8192
FUZZ_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check_outcome(label: str, result: CliResult, exit_codes: tuple[int, ...] = (0, 1)) -> None:
    """The fuzz contract: an exit in ``exit_codes`` (0 or 1 unless the entry says otherwise), a
    non-zero one with one ``error:`` line, and no traceback.

    Warnings the command printed before it met the error (e.g. "records were sorted") may stand
    before that line, one ``warning:`` line each; the error itself is exactly one line, last.
    """
    assert result.exit_code in exit_codes, f"{label}: exit {result.exit_code}\n{result.stderr}"
    assert "Traceback" not in result.stderr + result.stdout, label
    if result.exit_code != 0:
        lines = result.stderr.strip().splitlines()
        assert lines, f"{label}: exit {result.exit_code} with nothing on stderr"
        *warnings, error = lines
        assert error.startswith("error:"), f"{label}: expected one error line, got {lines!r}"
        assert error.isprintable(), f"{label}: {error!r}"
        for line in warnings:
            assert line.startswith("warning:") and line.isprintable(), f"{label}: {lines!r}"


def run_on_bytes(command: FileCommand, suffix: str, content: bytes) -> None:
    """Write ``content`` to a fresh temporary file and check ``command`` on it."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"input{suffix}"
        path.write_bytes(content)
        check_outcome(command.label, run_cli(*command.args(path)), command.exit_codes)


def _seed(name: str) -> bytes:
    """The first SEED_LINES lines of a shared real trace (header included)."""
    with (SHARED_DATA / "traces" / name).open("rb") as handle:
        return b"".join(handle.readline() for _ in range(SEED_LINES))


SEEDS: dict[str, bytes] = {}


def seed(name: str) -> bytes:
    if name not in SEEDS:
        SEEDS[name] = _seed(name)
    return SEEDS[name]


INJECTIONS = [
    b"abc", b"-1", b"-", b"NaN", b"Infinity", b"1e999", b"9" * 30, b"\x00", b"\xff\xfe",
    b'"', b"{", b"}", b"[", b"[/x]", b",", b",,", b"\n", b"\r\n", b" ", b"null", b"true",
    b"2023-13-45 99:99:99.9", b"\xe2\x82", b"\\u0000",
    b": ", b"- ", b"---\n", b"~", b"\t", b"&a ", b"*a", b"!!binary ", b"1_000", b".nan", b"-.inf",
]  # fmt: skip

MUTATIONS = st.one_of(
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 20)),
    st.tuples(st.just("inject"), st.integers(0, 10**6), st.sampled_from(INJECTIONS)),
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("swap_lines"), st.integers(0, 10**6), st.integers(0, 10**6)),
    st.tuples(st.just("drop_line"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("dup_line"), st.integers(0, 10**6), st.just(0)),
)


def mutate(data: bytes, ops: list[tuple[str, int, object]]) -> bytes:
    """Apply byte and line mutations (positions wrap around the current length)."""
    for op, pos, arg in ops:
        if op in ("swap_lines", "drop_line", "dup_line"):
            lines = data.splitlines(keepends=True)
            if not lines:
                continue
            i = pos % len(lines)
            if op == "swap_lines":
                assert isinstance(arg, int)
                j = arg % len(lines)
                lines[i], lines[j] = lines[j], lines[i]
            elif op == "drop_line":
                del lines[i]
            else:
                lines.insert(i, lines[i])
            data = b"".join(lines)
            continue
        at = pos % (len(data) + 1)
        if op == "delete":
            assert isinstance(arg, int)
            data = data[:at] + data[at + arg :]
        elif op == "inject":
            assert isinstance(arg, bytes)
            data = data[:at] + arg + data[at:]
        elif op == "flip" and data:
            assert isinstance(arg, int)
            at = pos % len(data)
            data = data[:at] + bytes([arg]) + data[at + 1 :]
        elif op == "truncate":
            data = data[:at]
    return data


TEXTY = st.text(
    alphabet=st.sampled_from(list('0123456789-.,:{}[]"e \nabcTIMESTAMPtimestamp_requests')),
    max_size=400,
)
LINEY = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "TIMESTAMP,ContextTokens,GeneratedTokens",
                "timestamp,requests,isl,osl",
                '{"timestamp": 1, "input_length": 2, "output_length": 3}',
                "2023-11-16 18:17:03.9799600,4808,10",
                "60,4,100,20",
            ]
        ),
        st.text(max_size=60),
    ),
    max_size=12,
).map(lambda lines: "\n".join(lines))

COMMAND_IDS = [c.label for c in FILE_COMMANDS]
TRACE_COMMANDS = [c for c in FILE_COMMANDS if c.seeds is None]
SEEDED_COMMANDS = [c for c in FILE_COMMANDS if c.seeds is not None]


@pytest.mark.parametrize("command", FILE_COMMANDS, ids=COMMAND_IDS)
@FUZZ_SETTINGS
@given(content=st.binary(max_size=MAX_BYTES // 4), suffix=st.sampled_from(SUFFIXES))
def test_garbage_bytes(command: FileCommand, content: bytes, suffix: str) -> None:
    run_on_bytes(command, suffix, content)


@pytest.mark.parametrize("command", FILE_COMMANDS, ids=COMMAND_IDS)
@FUZZ_SETTINGS
@given(text=st.one_of(TEXTY, LINEY), suffix=st.sampled_from(SUFFIXES[:2]))
def test_garbage_text(command: FileCommand, text: str, suffix: str) -> None:
    run_on_bytes(command, suffix, text.encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize("command", TRACE_COMMANDS, ids=[c.label for c in TRACE_COMMANDS])
@pytest.mark.parametrize("trace", [t[0] for t in REAL_TRACES])
@FUZZ_SETTINGS
@given(
    ops=st.lists(MUTATIONS, min_size=1, max_size=6),
    gz_cut=st.one_of(st.none(), st.just(-1), st.integers(0, 4096)),
)
def test_mutated_real_files(
    shared_data: Path,
    command: FileCommand,
    trace: str,
    ops: list[tuple[str, int, object]],
    gz_cut: int | None,
) -> None:
    """``gz_cut``: None = plain file; -1 = gzip it whole; n >= 0 = gzip and keep n bytes."""
    content = mutate(seed(trace), ops)[: MAX_BYTES * 4]
    suffix = Path(trace).suffix
    if gz_cut is not None:
        content = gzip.compress(content, mtime=0)
        content = content if gz_cut < 0 else content[:gz_cut]
        suffix += ".gz"
    run_on_bytes(command, suffix, content)


# --- commands with their own seed files (config YAML, state JSON, sample traces) -----------------

OWN_SEEDS: dict[str, dict[str, bytes]] = {}
SEEDED_SETTINGS = settings(FUZZ_SETTINGS, max_examples=25)


def own_seeds(command: FileCommand) -> dict[str, bytes]:
    assert command.seeds is not None
    if command.label not in OWN_SEEDS:
        OWN_SEEDS[command.label] = command.seeds()
    return OWN_SEEDS[command.label]


def _suffix(name: str) -> str:
    return "".join(Path(name).suffixes)


@pytest.mark.parametrize("command", SEEDED_COMMANDS, ids=[c.label for c in SEEDED_COMMANDS])
def test_seeds_are_valid(command: FileCommand) -> None:
    """Each seed is a file the command accepts: exit 0 — or, for ``load replay``, which cannot
    succeed against port 1, the endpoint failure (exit 3) that only a good trace reaches."""
    ok = 0 if 0 in command.exit_codes else 3
    for name, content in own_seeds(command).items():
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / name
            path.write_bytes(content)
            result = run_cli(*command.args(path))
        assert result.exit_code == ok, f"{command.label} {name}: {result.stderr}"


@pytest.mark.parametrize("command", SEEDED_COMMANDS, ids=[c.label for c in SEEDED_COMMANDS])
@SEEDED_SETTINGS
@given(data=st.data(), ops=st.lists(MUTATIONS, min_size=1, max_size=6))
def test_mutated_seeds(
    command: FileCommand, data: st.DataObject, ops: list[tuple[str, int, object]]
) -> None:
    name = data.draw(st.sampled_from(sorted(own_seeds(command))), label="seed")
    run_on_bytes(command, _suffix(name), mutate(own_seeds(command)[name], ops))


ODD = [
    None, True, False, 0, -1, -2, 2**63, 10**400, 0.0, -0.5, 1e-300, 1e308, float("nan"),
    float("inf"), float("-inf"), "", "x", "30", " ", "http://", "\x00", "é", [], [1], {}, {"a": 1},
]  # fmt: skip
STRUCTURED = [c for c in SEEDED_COMMANDS if c.label in ("plan run --config", "virtual get")]


@pytest.mark.parametrize("command", STRUCTURED, ids=[c.label for c in STRUCTURED])
@SEEDED_SETTINGS
@given(
    data=st.data(),
    edits=st.lists(
        st.tuples(
            st.integers(0, 100), st.sampled_from(["set", "drop", "add"]), st.sampled_from(ODD)
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_odd_values(
    command: FileCommand, data: st.DataObject, edits: list[tuple[int, str, object]]
) -> None:
    """Well-formed files of the right shape holding odd values: wrong types, NaN/inf, huge and
    negative numbers, empty strings, lists, mappings; keys dropped, unknown keys added."""
    name = data.draw(st.sampled_from(sorted(own_seeds(command))), label="seed")
    values = yaml.safe_load(own_seeds(command)[name])
    assert isinstance(values, dict)
    for index, action, value in edits:
        key = sorted(values)[index % len(values)] if values else "x"
        if action == "set":
            values[key] = value
        elif action == "drop":
            values.pop(key, None)
        else:
            values[f"{key}_extra"] = value
    if name.endswith(".json"):
        content = json.dumps(values).encode()  # NaN / Infinity tokens included: Python's JSON
    else:
        content = yaml.safe_dump(values, allow_unicode=True).encode()
    run_on_bytes(command, _suffix(name), content)


# --- profile directories -------------------------------------------------------------------------

PROFILE_PARTS = {
    "prefill": "selected_prefill_interpolation/raw_data.npz",
    "decode": "selected_decode_interpolation/raw_data.npz",
}
JSON_PARTS = ["prefill_raw_data.json", "decode_raw_data.json", "profile.json"]
DECIDE = ["--rps", "10", "--isl", "1000", "--osl", "100", "--ttft", "300", "--itl", "20"]
ODD_VALUES = [np.nan, np.inf, -np.inf, -1.0, 0.0, 1e30, -1e30, 0.5]


def _decide_on(folder: Path) -> None:
    """``plan decide`` on a profile directory: exit 0, or 1 (bad profile) / 4 (a valid but odd
    profile that cannot meet the SLA) with one ``error:`` line, never a traceback."""
    result = run_cli("plan", "decide", "--profile", str(folder), *DECIDE, "-o", "json")
    assert result.exit_code in (0, 1, 4), f"exit {result.exit_code}\n{result.stderr}"
    assert "Traceback" not in result.stderr + result.stdout
    if result.exit_code:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), lines
        assert lines[0].isprintable(), lines


def _profile_copy(folder: Path, json_form: bool) -> Path:
    """The shared H200 profile in ``folder/profile``: npz form, or JSON form only."""
    from dynamo_plan.adapters.profile_files import load_profile, save_profile

    target = folder / "profile"
    save_profile(load_profile(SHARED_DATA / "profiles" / "h200_llama3.1-8b-fp8_tp1p_tp1d"), target)
    if json_form:
        for part in PROFILE_PARTS.values():
            (target / part).unlink()
        (target / "profile.json").write_text('{"model": "llama-3.1-8b", "sla": {"ttft": 300}}\n')
    return target


@FUZZ_SETTINGS
@given(
    part=st.sampled_from(sorted(PROFILE_PARTS)),
    ops=st.lists(MUTATIONS, min_size=1, max_size=4),
)
def test_profile_npz_bytes(part: str, ops: list[tuple[str, int, object]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = _profile_copy(Path(folder), json_form=False)
        path = root / PROFILE_PARTS[part]
        path.write_bytes(mutate(path.read_bytes(), ops))
        _decide_on(root)


@FUZZ_SETTINGS
@given(
    part=st.sampled_from(sorted(PROFILE_PARTS)),
    key_index=st.integers(0, 10),
    action=st.sampled_from(["value", "truncate", "drop", "reverse", "scalar", "text"]),
    at=st.integers(0, 10**6),
    value=st.sampled_from(ODD_VALUES),
)
def test_profile_npz_values(part: str, key_index: int, action: str, at: int, value: float) -> None:
    """Valid npz files holding odd arrays: NaN/inf/negative values, lengths that disagree, a
    missing key, unsorted axes, a scalar, text."""
    with tempfile.TemporaryDirectory() as folder:
        root = _profile_copy(Path(folder), json_form=False)
        path = root / PROFILE_PARTS[part]
        with np.load(path) as data:
            arrays = {k: np.array(data[k]) for k in data.files}
        key = sorted(arrays)[key_index % len(arrays)]
        arr = arrays[key].astype(np.float64)
        if action == "value" and arr.size:
            arr.reshape(-1)[at % arr.size] = value
        elif action == "truncate":
            arr = arr.reshape(-1)[: at % (arr.size + 1)]
        elif action == "reverse":
            arr = arr.reshape(-1)[::-1].copy()
        elif action == "scalar":
            arr = np.array(value)
        if action == "drop":
            del arrays[key]
        elif action == "text":
            arrays[key] = np.array(["x"] * max(arr.size, 1))
        else:
            arrays[key] = arr
        with path.open("wb") as handle:
            np.savez(handle, **arrays)
        _decide_on(root)


@FUZZ_SETTINGS
@given(
    part=st.sampled_from(JSON_PARTS),
    ops=st.lists(MUTATIONS, min_size=1, max_size=4),
)
def test_profile_json_text(part: str, ops: list[tuple[str, int, object]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = _profile_copy(Path(folder), json_form=True)
        path = root / part
        path.write_bytes(mutate(path.read_bytes(), ops))
        _decide_on(root)
