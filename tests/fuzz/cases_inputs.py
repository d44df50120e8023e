"""Case table, file inputs: traces, DGDRs, profile directories, manifests (tests/fuzz/harness.py).

Each bad input runs through every command that reads that kind of file; a control (the good
file) runs through the same commands first, so a bad-input exit 1 means the input was refused,
not that the command was broken. Exit codes are the issue's: 0 ok, 1 bad input, 2 usage,
3 an outside service failed, 4 the SLA cannot be met.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tests.fuzz.harness import Case, Ctx, Run, chain, stderr_has, write

# --- traces --------------------------------------------------------------------------------------

GOOD_LINE = '{"timestamp": %d, "input_length": 800, "output_length": 60}\n'
GOOD_TRACE = "".join(GOOD_LINE % (i * 500) for i in range(120))  # 60 s, 2 requests/s

# (label, file name, content, expected exits): 0 where the input is in fact valid
TRACES: list[tuple[str, str, bytes | None, tuple[int, ...]]] = [
    ("control: valid jsonl", "t.jsonl", GOOD_TRACE.encode(), (0,)),
    ("utf-8 with BOM", "t.jsonl", b"\xef\xbb\xbf" + GOOD_TRACE.encode(), (0,)),
    ("empty file", "t.jsonl", b"", (1,)),
    ("binary", "t.jsonl", bytes(range(256)) * 8, (1,)),
    ("utf-16", "t.jsonl", GOOD_TRACE.encode("utf-16"), (1,)),
    ("latin-1 byte in a line", "t.jsonl", GOOD_TRACE.encode() + b'{"timestamp": 9\xe9}\n', (1,)),
    ("a json array", "t.jsonl", json.dumps([json.loads(GOOD_LINE % 0)]).encode(), (1,)),
    ("cut mid-object", "t.jsonl", GOOD_TRACE.encode()[:-20], (0, 1)),
    ("negative lengths", "t.jsonl", (GOOD_LINE % 0).replace("800", "-5").encode() * 3, (1,)),
    (
        "NaN timestamp",
        "t.jsonl",
        b'{"timestamp": NaN, "input_length": 5, "output_length": 5}\n',
        (1,),
    ),
    ("lengths 1e30", "t.jsonl", (GOOD_LINE % 0).replace("800", "1e30").encode() * 3, (0, 1)),
    (
        "timestamps decreasing",
        "t.jsonl",
        "".join(reversed(GOOD_TRACE.splitlines(True))).encode(),
        (0,),
    ),
    ("timestamp 1e15 ms", "t.jsonl", (GOOD_TRACE + GOOD_LINE % 10**15).encode(), (0, 1)),
    ("one 1 MB line", "t.jsonl", b"{" + b"x" * 2**20 + b"\n", (1,)),
    ("truncated gzip", "t.jsonl.gz", gzip.compress(GOOD_TRACE.encode(), mtime=0)[:200], (1,)),
    ("gz name, plain text", "t.jsonl.gz", GOOD_TRACE.encode(), (0, 1)),
    (
        "azure csv, bad date",
        "t.csv",
        b"TIMESTAMP,ContextTokens,GeneratedTokens\n2023-13-45 99:99,5,5\n",
        (1,),
    ),
    ("a directory with no trace", "d", None, (1,)),
]


def _trace_setup(name: str, content: bytes | None) -> Callable[[Ctx], None]:
    if content is None:
        return lambda ctx: (ctx / name).mkdir()
    return write(name, content)


TRACE_COMMANDS: list[tuple[str, Callable[[Ctx, str], list[str]], tuple[int, ...]]] = [
    ("trace stats", lambda c, t: ["trace", "stats", t, "-o", "json"], ()),
    ("trace convert", lambda c, t: ["trace", "convert", t, "--out", "out.jsonl"], ()),
    (
        "predict backtest",
        lambda c, t: [
            "predict",
            "backtest",
            t,
            "--predictors",
            "constant",
            "--interval",
            "5",
            "--warmup",
            "2",
            "-o",
            "json",
        ],
        # 60 s of trace in 5 s intervals is enough; a shorter one is too few intervals: 1
        (),
    ),
    (
        "simulate",
        lambda c, t: [
            "simulate",
            t,
            "--profile",
            c.world.profile,
            "--ttft",
            "3000",
            "--itl",
            "100",
            "--policy",
            "static",
            "-o",
            "json",
        ],
        # a lengths-1e30 request cannot meet any TTFT: 4 is the right answer for it
        (4,),
    ),
    (
        "load replay (nothing listening)",
        lambda c, t: [
            "load",
            "replay",
            t,
            "--url",
            "http://127.0.0.1:1",
            "--timeout",
            "2",
            "-o",
            "json",
        ],
        # a good trace gets as far as the endpoint: 3, never 0
        (3,),
    ),
]


def _trace_cases() -> list[Case]:
    cases = []
    for label, name, content, expect in TRACES:
        for command, args, extra in TRACE_COMMANDS:
            codes = tuple(sorted({*expect, *extra}))
            if command.startswith("load replay"):
                codes = tuple(sorted({3 if e == 0 else e for e in expect} | set(extra)))
            cases.append(
                Case(
                    "traces",
                    f"{command} <- {label}",
                    lambda c, a=args, n=name: a(c, n),  # type: ignore[misc]
                    codes,
                    setup=_trace_setup(name, content),
                    may_write=("out.jsonl",) if command == "trace convert" else (),
                )
            )
    return cases


# --- DGDRs ---------------------------------------------------------------------------------------


def _dgdr_text(ctx: Ctx) -> str:
    return ctx.world.dgdr.read_text()


def _dgdr(edit: Callable[[str], str | bytes]) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        out = edit(_dgdr_text(ctx))
        path = ctx / "dgdr.yaml"
        path.write_bytes(out if isinstance(out, bytes) else out.encode())

    return setup


def _replace(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, (old, text)
        return text.replace(old, new, 1)

    return edit


def _cut(start: str, end: str) -> Callable[[str], str]:
    """Remove the text from ``start`` up to (not including) ``end``."""

    def edit(text: str) -> str:
        i = text.index(start)
        return text[:i] + text[text.index(end, i) :]

    return edit


DGDRS: list[tuple[str, Callable[[Ctx], None], tuple[int, ...]]] = [
    ("control: valid", _dgdr(lambda t: t), (0,)),
    ("binary", write("dgdr.yaml", b"\x00\x01\x02\xff\xfe\xfd" * 50), (1,)),
    ("utf-16", _dgdr(lambda t: t.encode("utf-16")), (1,)),
    ("not yaml", write("dgdr.yaml", "spec: [unclosed\n  model: {\n"), (1,)),
    ("a list document", write("dgdr.yaml", "- a\n- b\n"), (1,)),
    ("a scalar document", write("dgdr.yaml", "42\n"), (1,)),
    ("empty file", write("dgdr.yaml", ""), (1,)),
    ("isl a string", _dgdr(_replace("isl: 1000", "isl: abc")), (1,)),
    ("ttft a list", _dgdr(_replace("ttft: 300.0", "ttft: [1, 2]")), (1,)),
    ("backend a number", _dgdr(_replace("backend: vllm", "backend: 7")), (1,)),
    ("unknown backend", _dgdr(_replace("backend: vllm", "backend: foo")), (1,)),
    ("isl 1e400 (inf)", _dgdr(_replace("isl: 1000", "isl: 1e400")), (1,)),
    ("isl 10^30", _dgdr(_replace("isl: 1000", "isl: " + "1" + "0" * 30)), (1,)),
    ("isl 0", _dgdr(_replace("isl: 1000", "isl: 0")), (1,)),
    ("ttft negative", _dgdr(_replace("ttft: 300.0", "ttft: -5")), (1,)),
    ("ttft .nan", _dgdr(_replace("ttft: 300.0", "ttft: .nan")), (1,)),
    ("no spec.model", _dgdr(_replace("  model: meta-llama/Llama-3.1-8B-Instruct\n", "")), (1,)),
    ("no sla", _dgdr(lambda t: t.split("      sla:")[0] + "      sweep: {}\n"), (1,)),
    ("no profilingConfig.config", _dgdr(lambda t: t[: t.index("    config:\n")]), (1,)),
    ("wrong kind", _dgdr(_replace("kind: DynamoGraphDeploymentRequest", "kind: Deployment")), (1,)),
    ("valid + garbage document", _dgdr(lambda t: t + "---\n\x00\x01: [\n"), (1,)),
    ("a directory", lambda ctx: (ctx / "dgdr.yaml").mkdir(), (1,)),
    ("missing file", lambda ctx: None, (1, 2)),
]

DGDR_COMMANDS: list[tuple[str, Callable[[Ctx], list[str]], tuple[str, ...]]] = [
    ("dgdr validate", lambda c: ["dgdr", "validate", "dgdr.yaml", "-o", "json"], ()),
    ("generate-dgd", lambda c: ["generate-dgd", "--dgdr", "dgdr.yaml", "--profile", c.world.profile], ()),
    (
        "profile --offline --dgdr",
        lambda c: ["profile", "--offline", "--dgdr", "dgdr.yaml", "--out", "prof", "--no-plots", "-o", "json"],
        ("prof", "prof/**"),
    ),
    (
        "dgdr run --no-cluster",
        lambda c: ["dgdr", "run", "dgdr.yaml", "--no-cluster", "--out", "run", "-o", "json"],
        ("run", "run/**"),
    ),
]  # fmt: skip


def _dgdr_cases() -> list[Case]:
    cases = [
        Case("dgdrs", f"{command} <- {label}", args, expect, setup=setup)
        for label, setup, expect in DGDRS
        for command, args, _ in DGDR_COMMANDS
    ]
    # a profile made for another model, backend and TP than the DGDR asks for (issue item 1)
    mismatch = {
        "model": "llama-3.1-70b",
        "backend": "trtllm",
        "parallelism": {
            "prefill": {"tp": 4, "gpus_per_engine": 4},
            "decode": {"tp": 4, "gpus_per_engine": 4},
        },
    }
    cases.append(
        Case(
            "dgdrs",
            "generate-dgd <- 8B vLLM DGDR with a 70B TRT-LLM TP4 profile",
            lambda c: ["generate-dgd", "--dgdr", c.world.dgdr, "--profile", "p70"],
            (1,),
            setup=lambda c: (c.world.profile_copy(c / "p70", mismatch), None)[1],
            checks=(stderr_has("70b", "8B"),),
        )
    )
    return cases


# --- profile directories -------------------------------------------------------------------------

PREFILL_NPZ = "selected_prefill_interpolation/raw_data.npz"
DECODE_NPZ = "selected_decode_interpolation/raw_data.npz"


def _profile(*edits: Callable[[Path], None]) -> Callable[[Ctx], None]:
    """A set-up copying the good profile to ``prof`` and applying ``edits`` in order."""

    def setup(ctx: Ctx) -> None:
        root = ctx.world.profile_copy(ctx / "prof")
        for edit in edits:
            edit(root)

    return setup


def _utf16(part: str) -> Callable[[Path], None]:
    return lambda root: (root / part).write_bytes((root / part).read_text().encode("utf-16"))


def _bytes(part: str, content: bytes) -> Callable[[Path], None]:
    return lambda root: (root / part).write_bytes(content)


def _truncate(part: str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        data = (root / part).read_bytes()
        (root / part).write_bytes(data[: len(data) // 2])

    return edit


def _remove(*parts: str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        for part in parts:
            (root / part).unlink()

    return edit


def _nan_npz(root: Path) -> None:
    path = root / PREFILL_NPZ
    with np.load(path) as data:
        arrays = {k: np.array(data[k], dtype=np.float64) for k in data.files}
    key = sorted(arrays)[-1]
    arrays[key].reshape(-1)[0] = np.nan
    with path.open("wb") as handle:
        np.savez(handle, **arrays)
    (root / "prefill_raw_data.json").unlink()


def _meta(update: dict[str, object] | Callable[[dict], object]) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        path = root / "profile.json"
        data = json.loads(path.read_text())
        if callable(update):
            update(data)
        else:
            data.update(update)
        path.write_text(json.dumps(data))

    return edit


def _gpus(value: object) -> Callable[[dict], object]:
    def edit(data: dict) -> None:
        for role in ("prefill", "decode"):
            data["parallelism"][role]["gpus_per_engine"] = value

    return edit


PROFILES: list[tuple[str, Callable[[Ctx], None], tuple[int, ...]]] = [
    ("control: valid", _profile(), (0,)),
    ("control: no profile.json (a Dynamo profile)", _profile(_remove("profile.json")), (0,)),
    ("missing directory", lambda ctx: None, (1, 2)),
    ("empty directory", lambda ctx: (ctx / "prof").mkdir(), (1,)),
    ("a regular file", write("prof", "not a profile\n"), (1, 2)),
    (
        "prefill npz cut in half, no json form",
        _profile(_truncate(PREFILL_NPZ), _remove("prefill_raw_data.json")),
        (1,),
    ),
    (
        "decode npz is text, no json form",
        _profile(_bytes(DECODE_NPZ, b"hello\n"), _remove("decode_raw_data.json")),
        (1,),
    ),
    ("prefill npz gone, json form kept", _profile(_remove(PREFILL_NPZ)), (0, 1)),
    ("both prefill forms gone", _profile(_remove(PREFILL_NPZ, "prefill_raw_data.json")), (1,)),
    ("NaN in the prefill data", _profile(_nan_npz), (1,)),
    (
        "decode json garbage, no npz",
        _profile(_remove(DECODE_NPZ), _bytes("decode_raw_data.json", b'{"x_kv_usage": [1,')),
        (1,),
    ),
    ("profile.json binary", _profile(_bytes("profile.json", b"\x00\xff\xfe\x01" * 64)), (1,)),
    ("profile.json utf-16", _profile(_utf16("profile.json")), (1,)),
    ("profile.json a list", _profile(_bytes("profile.json", b"[]")), (1,)),
    ("profile.json not json", _profile(_bytes("profile.json", b"{model: x")), (1,)),
    ("gpus_per_engine 'x'", _profile(_meta(_gpus("x"))), (1,)),
    ("gpus_per_engine 0", _profile(_meta(_gpus(0))), (1,)),
    ("gpus_per_engine -4", _profile(_meta(_gpus(-4))), (1,)),
    ("gpus_per_engine 10^30", _profile(_meta(_gpus(10**30))), (1,)),
    ("sla ttft 'fast'", _profile(_meta(lambda d: d["sla"].update(ttft="fast"))), (1,)),
    ("parallelism a string", _profile(_meta({"parallelism": "tp4"})), (1,)),
]

DECIDE = ["--rps", "10", "--isl", "1000", "--osl", "100", "--ttft", "300", "--itl", "20"]
PROFILE_COMMANDS: list[tuple[str, Callable[[Ctx], list[str]], dict[str, object]]] = [
    (
        "plan decide",
        lambda c: [
            "plan",
            "decide",
            "--profile",
            "prof",
            *DECIDE,
            "--max-gpu-budget",
            "-1",
            "-o",
            "json",
        ],
        {},
    ),
    (
        "simulate",
        lambda c: [
            "simulate",
            c.world.trace,
            "--profile",
            "prof",
            "--ttft",
            "3000",
            "--itl",
            "100",
            "--policy",
            "static",
            "-o",
            "json",
        ],
        {},
    ),
    ("generate-dgd", lambda c: ["generate-dgd", "--dgdr", c.world.dgdr, "--profile", "prof"], {}),
    # a bad profile must stop the mocker before it serves; a good one serves until killed, so the
    # mocker runs only the bad ones (its good-profile run is in the signals class)
    (
        "mocker serve",
        lambda c: ["mocker", "serve", "--profile", "prof", "--port", "0"],
        {"timeout_s": 10.0},
    ),
]


def _gpus_match(per_engine: int) -> Callable[[Ctx, Run], str | None]:
    """``plan decide -o json``: total GPUs = per_engine × replicas (profile.json wiring)."""

    def check(ctx: Ctx, run: Run) -> str | None:
        out = json.loads(run.stdout)
        want = per_engine * (out["prefill_replicas"] + out["decode_replicas"])
        if out["gpus"] != want:
            return f"gpus {out['gpus']}, expected {per_engine} × replicas = {want}"
        return None

    return check


def _profile_cases() -> list[Case]:
    cases = []
    for label, setup, expect in PROFILES:
        for command, args, extra in PROFILE_COMMANDS:
            if command == "mocker serve" and 0 in expect:
                continue
            cases.append(
                Case("profiles", f"{command} <- {label}", args, expect, setup=setup, **extra)  # type: ignore[arg-type]
            )
    tp4 = _profile(_meta(_gpus(4)))
    cases.append(
        Case(
            "profiles",
            "plan decide <- profile.json says 4 GPUs per engine",
            PROFILE_COMMANDS[0][1],
            (0,),
            setup=tp4,
            checks=(_gpus_match(4),),
        )
    )
    return cases


# --- manifests -----------------------------------------------------------------------------------

MANIFEST_OK = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
data:
  k: v
"""

MANIFESTS: list[tuple[str, bytes | None, tuple[int, ...]]] = [
    ("binary", bytes(range(256)) * 4, (1,)),
    ("utf-16", MANIFEST_OK.format(name="u16").encode("utf-16"), (1,)),
    ("not yaml", b"kind: [unclosed\n  - {\n", (1,)),
    ("a scalar document", b"hello\n", (1,)),
    ("a list document", b"- kind: ConfigMap\n- 2\n", (1,)),
    ("no kind", b"apiVersion: v1\nmetadata:\n  name: x\n", (1,)),
    ("no metadata", b"apiVersion: v1\nkind: ConfigMap\n", (1,)),
    ("name a number", b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: 42\n", (1,)),
    ("empty file", b"", (1,)),
    ("only separators", b"---\n---\n", (1,)),
    ("a directory", None, (1,)),
    (
        "valid + binary document",
        MANIFEST_OK.format(name="half").encode() + b"---\n\x00\xff\x01\n",
        (1,),
    ),
]


def _manifest_setup(content: bytes | None) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        if content is None:
            (ctx / "m.yaml").mkdir()
        else:
            (ctx / "m.yaml").write_bytes(content)
        ctx.world.kubeconfig(ctx / "kubeconfig")

    return setup


def _not_in_cluster(name: str) -> Callable[[Ctx, Run], str | None]:
    def check(ctx: Ctx, run: Run) -> str | None:
        live = ctx.world.standin().get("configmaps", "default", name)
        return f"configmap {name} was created" if live is not None else None

    return check


def _unreachable_kubeconfig(ctx: Ctx) -> None:
    (ctx / "kubeconfig").write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: x\n  cluster: {server: 'http://127.0.0.1:1'}\n"
        "users:\n- name: x\n  user: {}\ncontexts:\n- name: x\n  context: {cluster: x, user: x}\n"
        "current-context: x\n"
    )


def _manifest_cases() -> list[Case]:
    cases = []
    kube = ["--kubeconfig", "kubeconfig", "-o", "json"]
    for label, content, expect in MANIFESTS:
        for verb in ("apply", "delete"):
            cases.append(
                Case(
                    "manifests",
                    f"{verb} <- {label}",
                    lambda c, v=verb: [v, "m.yaml", *kube],  # type: ignore[misc]
                    expect,
                    setup=_manifest_setup(content),
                    may_write=("kubeconfig",),
                )
            )
    for verb in ("apply", "delete"):
        cases.append(
            Case(
                "manifests",
                f"{verb} <- missing file",
                lambda c, v=verb: [v, "nothing.yaml", *kube],  # type: ignore[misc]
                (1, 2),
                setup=_manifest_setup(b""),
            )
        )
        cases.append(
            Case(
                "manifests",
                f"{verb} <- valid manifest, cluster unreachable",
                lambda c, v=verb: [v, "m.yaml", *kube],  # type: ignore[misc]
                (3,),
                setup=chain(write("m.yaml", MANIFEST_OK.format(name="x")), _unreachable_kubeconfig),
            )
        )
    cases.append(
        Case(
            "manifests",
            "apply --diff without --dry-run only previews",
            lambda c: ["apply", "m.yaml", "--diff", "--kubeconfig", "kubeconfig"],
            (0,),
            setup=_manifest_setup(MANIFEST_OK.format(name="diff-only").encode()),
            checks=(_not_in_cluster("diff-only"),),
        )
    )
    cases.append(
        Case(
            "manifests",
            "control: apply a valid manifest",
            lambda c: ["apply", "m.yaml", *kube],
            (0,),
            setup=_manifest_setup(MANIFEST_OK.format(name="control").encode()),
        )
    )
    return cases


def cases() -> list[Case]:
    return [*_trace_cases(), *_dgdr_cases(), *_profile_cases(), *_manifest_cases()]
