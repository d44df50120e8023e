"""Profile directories: the real H200 profile round-trips by Dynamo's keys; JSON-only form loads;
bad files name the file and key; output directories are written all-or-nothing."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from dynamo_plan.adapters.profile_files import (
    DECODE_JSON,
    DECODE_NPZ,
    PREFILL_JSON,
    PREFILL_NPZ,
    PROFILE_JSON,
    is_profile_dir,
    json_form,
    load_profile,
    profile_arrays,
    save_profile,
    save_profile_parts,
    write_profile_dir,
)
from dynamo_plan.core.profile import PerformanceProfile
from dynamo_plan.errors import InputError

H200 = Path("profiles") / "h200_llama3.1-8b-fp8_tp1p_tp1d"


@pytest.fixture
def h200(shared_data: Path) -> Path:
    return shared_data / H200


def _npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as d:
        return {k: d[k] for k in d.files}


def test_round_trip_keeps_arrays_and_keys(h200: Path, tmp_path: Path) -> None:
    profile = load_profile(h200)
    assert profile.meta == {} and profile.max_kv_tokens == 945029
    save_profile(profile, tmp_path / "p")
    for rel in (PREFILL_NPZ, DECODE_NPZ):
        original, saved = _npz(h200 / rel), _npz(tmp_path / "p" / rel)
        assert list(saved) == list(original)
        for key, arr in original.items():
            assert np.array_equal(saved[key], arr), key
            assert saved[key].dtype == arr.dtype
    again = load_profile(tmp_path / "p")
    assert np.array_equal(again.decode.itl_ms, profile.decode.itl_ms)
    assert np.array_equal(again.prefill.ttft_ms, profile.prefill.ttft_ms)
    assert again.max_kv_tokens == profile.max_kv_tokens


def test_json_form_only_loads_the_same(h200: Path, tmp_path: Path) -> None:
    profile = load_profile(h200)
    save_profile(profile, tmp_path / "p")
    shutil.rmtree(tmp_path / "p" / PREFILL_NPZ.parent)
    shutil.rmtree(tmp_path / "p" / DECODE_NPZ.parent)
    doc = json.loads((tmp_path / "p" / DECODE_JSON).read_text())
    assert doc["max_kv_tokens"] == 945029  # an integer, as Dynamo's ConfigMap holds it
    assert is_profile_dir(tmp_path / "p")
    again = load_profile(tmp_path / "p")
    assert np.array_equal(again.decode.kv_usage, profile.decode.kv_usage)
    assert np.array_equal(again.prefill.isl, profile.prefill.isl)


def test_meta_round_trips(h200: Path, tmp_path: Path) -> None:
    profile = dataclasses.replace(load_profile(h200), meta={"model": "llama", "sla": {"isl": 3}})
    save_profile(profile, tmp_path / "p")
    assert json.loads((tmp_path / "p" / PROFILE_JSON).read_text())["model"] == "llama"
    assert load_profile(tmp_path / "p").meta == profile.meta


def test_missing_key_names_file_and_key(h200: Path, tmp_path: Path) -> None:
    shutil.copytree(h200, tmp_path / "p")
    d = _npz(h200 / DECODE_NPZ)
    del d["z_itl"]
    np.savez(tmp_path / "p" / DECODE_NPZ, **d)
    with pytest.raises(
        InputError, match=r"selected_decode_interpolation/raw_data.npz: missing key 'z_itl'"
    ):
        load_profile(tmp_path / "p")


def test_missing_role_names_both_forms(h200: Path, tmp_path: Path) -> None:
    shutil.copytree(h200, tmp_path / "p")
    shutil.rmtree(tmp_path / "p" / PREFILL_NPZ.parent)
    with pytest.raises(InputError, match=r"prefill_raw_data\.json"):
        load_profile(tmp_path / "p")


def test_bad_values_name_file_and_key(h200: Path, tmp_path: Path) -> None:
    save_profile(load_profile(h200), tmp_path / "p", json_form=True)
    shutil.rmtree(tmp_path / "p" / PREFILL_NPZ.parent)
    doc = json.loads((tmp_path / "p" / PREFILL_JSON).read_text())
    doc["prefill_ttft"][2] = -1
    (tmp_path / "p" / PREFILL_JSON).write_text(json.dumps(doc))
    with pytest.raises(InputError, match=r"prefill_raw_data.json: 'prefill_ttft'\[2\] is -1"):
        load_profile(tmp_path / "p")
    (tmp_path / "p" / PREFILL_JSON).write_text("{not json")
    with pytest.raises(InputError, match=r"prefill_raw_data.json:1: invalid JSON"):
        load_profile(tmp_path / "p")


def test_corrupt_npz_and_bad_max_kv(h200: Path, tmp_path: Path) -> None:
    shutil.copytree(h200, tmp_path / "p")
    d = _npz(h200 / DECODE_NPZ)
    d["max_kv_tokens"] = np.array([1, 2])
    np.savez(tmp_path / "p" / DECODE_NPZ, **d)
    with pytest.raises(InputError, match="'max_kv_tokens' must be one integer"):
        load_profile(tmp_path / "p")
    (tmp_path / "p" / DECODE_NPZ).write_bytes(b"garbage")
    with pytest.raises(InputError, match=r"not a readable \.npz"):
        load_profile(tmp_path / "p")
    with pytest.raises(InputError, match="not a directory"):
        load_profile(tmp_path / "nope")


def test_write_profile_dir_replaces_a_profile(h200: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    profile = load_profile(h200)
    write_profile_dir(out, lambda d: save_profile(profile, d))
    write_profile_dir(out, lambda d: save_profile(profile, d, json_form=False))
    assert not (out / PREFILL_JSON).exists() and is_profile_dir(out)
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask  # an ordinary directory, not 0700
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp dirs left


def test_write_profile_dir_failure_leaves_nothing(h200: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    profile = load_profile(h200)

    def half(d: Path) -> None:
        save_profile(profile, d)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_profile_dir(out, half)
    assert list(tmp_path.iterdir()) == []
    write_profile_dir(out, lambda d: save_profile(profile, d))
    with pytest.raises(RuntimeError):
        write_profile_dir(out, half)
    assert is_profile_dir(out) and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_write_profile_dir_refuses_foreign_dirs(tmp_path: Path) -> None:
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "thesis.tex").write_text("precious")
    with pytest.raises(InputError, match="not a performance profile; refusing"):
        write_profile_dir(tmp_path / "keep", lambda d: None)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a directory"):
        write_profile_dir(tmp_path / "file", lambda d: None)
    assert (tmp_path / "keep" / "thesis.tex").read_text() == "precious"


# --- profile.json: ProfileMeta, profile_defaults, same_model -----------------------------------

TP4_META = {
    "model": "meta-llama/Llama-3.1-70B",
    "system": "h200_sxm",
    "backend": "trtllm",
    "parallelism": {
        "prefill": {"tp": 4, "gpus_per_engine": 4},
        "decode": {"tp": 4, "gpus_per_engine": 4},
    },
    "sla": {"isl": 3000, "osl": 150, "ttft": 200.0, "itl": 20.0},
}


def test_profile_meta_reads_what_the_profilers_write(h200: Path, tmp_path: Path) -> None:
    """The keys ``sweep_meta`` (offline, in-cluster) writes; ``profile --online``'s one-role form
    (``parallelism`` of the measured role only, ``ttft``/``itl`` null)."""
    from dynamo_plan.adapters.profile_files import read_profile_meta

    out = tmp_path / "p"
    shutil.copytree(h200, out)
    (out / PROFILE_JSON).write_text(json.dumps(TP4_META))
    meta = read_profile_meta(out)
    assert meta.source == out / PROFILE_JSON
    assert (meta.model, meta.system, meta.backend) == (
        "meta-llama/Llama-3.1-70B",
        "h200_sxm",
        "trtllm",
    )
    assert meta.tp == meta.gpus_per_engine == {"prefill": 4, "decode": 4}
    assert meta.sla == {"isl": 3000.0, "osl": 150.0, "ttft": 200.0, "itl": 20.0}
    assert meta.describe() == "meta-llama/Llama-3.1-70B (trtllm, TP4)"
    assert meta.settings()["decode_engine_num_gpu"] == 4
    online = {
        "model": "m",
        "parallelism": {"decode": {"tp": 2, "gpus_per_engine": 2}},
        "sla": {"isl": 1000, "osl": 100, "ttft": None, "itl": None},
    }
    (out / PROFILE_JSON).write_text(json.dumps(online))
    meta = read_profile_meta(out)
    assert meta.tp == {"decode": 2} and meta.sla == {"isl": 1000.0, "osl": 100.0}
    assert meta.describe() == "m (decode TP2)"
    assert set(meta.settings()) == {"model", "isl", "osl", "decode_engine_num_gpu"}


def test_profile_meta_without_profile_json_is_empty(h200: Path) -> None:
    from dynamo_plan.adapters.profile_files import loaded_profile_meta, read_profile_meta

    meta = read_profile_meta(h200)
    assert meta.source is None and meta.settings() == {}
    assert loaded_profile_meta(load_profile(h200), h200) == meta


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"parallelism": {"decode": {"tp": 0}}},
            "'parallelism.decode.tp' must be an integer in 1..72",
        ),
        # issue 11: GPUs per engine beyond one NVLink domain (MAX_GPUS_PER_NODE) are refused
        (
            {"parallelism": {"decode": {"gpus_per_engine": 10**30}}},
            "'parallelism.decode.gpus_per_engine' must be an integer in 1..72 (the most GPUs one "
            "engine can span), got 1" + "0" * 30,
        ),
        (
            {"parallelism": {"prefill": {"tp": 73}}},
            "'parallelism.prefill.tp' must be an integer in 1..72",
        ),
        ({"parallelism": {"prefill": {"tp": 2.5}}}, "'parallelism.prefill.tp' must be an integer"),
        ({"parallelism": {"prefill": {"tp": True}}}, "'parallelism.prefill.tp' must be an integer"),
        ({"parallelism": {"decode": {"tp": 4, "gpus_per_engine": 2}}}, "fewer than its tp 4"),
        ({"parallelism": [1, 2]}, "'parallelism' must be an object"),
        ({"sla": {"ttft": "fast"}}, "'sla.ttft' must be a number > 0 ms, got 'fast'"),
        ({"sla": {"isl": 0}}, "'sla.isl' must be a number > 0 tokens"),
        ({"sla": 5}, "'sla' must be an object"),
        ({"model": 70}, "'model' must be a string, got 70"),
    ],
)
def test_profile_meta_bad_values_name_file_and_key(doc: dict, message: str) -> None:
    from dynamo_plan.adapters.profile_files import parse_profile_meta

    with pytest.raises(InputError) as info:
        parse_profile_meta(doc, Path("prof") / PROFILE_JSON)
    assert str(info.value).startswith(f"{Path('prof') / PROFILE_JSON}: ")
    assert message in str(info.value)


def test_same_model_ignores_case_and_knows_catalogue_names() -> None:
    from dynamo_plan.adapters.profile_files import same_model

    assert same_model("meta-llama/Llama-3.1-8B-Instruct", "llama-3.1-8b")
    assert same_model("MY-ORG/Custom-Model", "my-org/custom-model")
    assert not same_model("meta-llama/Llama-3.1-70B", "meta-llama/Llama-3.1-8B")
    assert not same_model("my-org/a", "my-org/b")


def test_profile_defaults_precedence_sources_and_notes() -> None:
    from dynamo_plan.adapters.profile_files import parse_profile_meta, profile_defaults

    meta = parse_profile_meta(TP4_META, "prof/profile.json")
    given = {"ttft": 500.0, "itl": 20.0, "isl": 3000.0, "prefill_engine_num_gpu": 1, "model": "x"}
    out = profile_defaults(
        meta, given, {"ttft": "--ttft", "itl": "--itl", "model": "a.yaml's model:"}
    )
    assert out.values == {
        "ttft": 500.0,  # given: wins over the recorded 200
        "itl": 20.0,  # given, equal to the recorded value: no note
        "isl": 3000.0,
        "prefill_engine_num_gpu": 4,  # not given: the profile's
        "model": "x",
    }
    assert out.sources == {
        "ttft": "flag",
        "itl": "flag",
        "isl": "profile.json",
        "prefill_engine_num_gpu": "profile.json",
        "model": "config file",
    }
    assert out.notes == [
        "--ttft 500 ms overrides the profile's 200 ms (prof/profile.json)",
        "a.yaml's model: x overrides the profile's meta-llama/Llama-3.1-70B (prof/profile.json)",
    ]
    nothing = profile_defaults(parse_profile_meta({}, "p"), {"ttft": None, "itl": 50.0}, {})
    assert nothing.values == {"ttft": None, "itl": 50.0}
    assert nothing.sources == {"ttft": "default", "itl": "default"} and nothing.notes == []


# --- one writer: every producer's output loads back as what it wrote ----------------------------


def _assert_same_profile(back: PerformanceProfile, wrote: PerformanceProfile) -> None:
    for part in ("prefill", "decode"):
        for name, value in vars(getattr(wrote, part)).items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(getattr(getattr(back, part), name), value, name)
    assert back.max_kv_tokens == wrote.max_kv_tokens
    assert back.meta == json.loads(json.dumps(wrote.meta))  # as JSON holds it


def _online_out(tmp_path: Path, role: str) -> Path:
    """``profile --online --endpoint`` (role ``role``) against the virtual-clock stub."""
    from dynamo_plan.profiler.online import OnlineRequest, run_online
    from tests.profiler.openai_stub import StubConfig
    from tests.profiler.virtual_stub import URL, VirtualStub, virtual_endpoint

    stub = VirtualStub(
        StubConfig(ttft_s=lambda isl: 0.02 + isl * 4e-6, itl_s=lambda n, ctx: 0.008 + 0.001 * n)
    )
    req = OnlineRequest(
        endpoint=URL, out=tmp_path / role, isl=1000, osl=30, role=role,  # type: ignore[arg-type]
        max_isl=3000, prefill_points=3, prefill_requests=2, decode_rows=1, decode_points=3,
        decode_rounds=1, max_concurrency=8, ttft_ms=100.0, itl_ms=20.0, plots=False,
    )  # fmt: skip
    with virtual_endpoint(stub):
        run_online(req, resolved=("stub-model", 100_000))
    return req.out


def test_offline_profile_round_trips(tmp_path: Path) -> None:
    from dynamo_plan.profiler.offline import OfflineRequest, run_offline
    from dynamo_plan.profiler.sweep import SweepGrid, SweepSLA

    out = tmp_path / "offline"
    outcome = run_offline(
        OfflineRequest(
            model="llama-3.1-8b", system="h200_sxm", backend="vllm", out=out, plots=False,
            sla=SweepSLA(3000, 300, 500.0, 30.0), grid=SweepGrid(4, 2, 3, 8),
        )
    )  # fmt: skip
    meta = json.loads((out / PROFILE_JSON).read_text())
    assert meta["obtained_by"]["method"] == "estimated"
    _assert_same_profile(load_profile(out), dataclasses.replace(outcome.result.profile, meta=meta))


def test_online_endpoint_profiles_round_trip(tmp_path: Path) -> None:
    """Both roles: a loadable profile; one role: only that role's npz and JSON (equal), and the
    JSON form is what the cluster profiler publishes and parses back."""
    from dynamo_plan.profiler.measured import parse_decode, parse_prefill

    both = _online_out(tmp_path, "both")
    back = load_profile(both)
    assert json.loads((both / PROFILE_JSON).read_text()) == back.meta
    assert back.meta["obtained_by"]["method"] == "online-endpoint"
    pre_only, dec_only = _online_out(tmp_path, "prefill"), _online_out(tmp_path, "decode")
    assert sorted(p.name for p in pre_only.iterdir()) == sorted(
        [PREFILL_NPZ.parts[0], PREFILL_JSON.name, PROFILE_JSON.name]
    )
    assert sorted(p.name for p in dec_only.iterdir()) == sorted(
        [DECODE_NPZ.parts[0], DECODE_JSON.name, PROFILE_JSON.name]
    )
    curve = parse_prefill((pre_only / PREFILL_JSON).read_text(), "prefill")
    npz = _npz(pre_only / PREFILL_NPZ)
    assert npz["prefill_isl"].dtype == np.int64
    np.testing.assert_array_equal(curve.isl, npz["prefill_isl"])
    np.testing.assert_array_equal(curve.ttft_ms, npz["prefill_ttft"])
    np.testing.assert_array_equal(curve.thpt_per_gpu, npz["prefill_thpt_per_gpu"])
    measured = parse_decode((dec_only / DECODE_JSON).read_text(), "decode")
    npz = _npz(dec_only / DECODE_NPZ)
    assert measured.max_kv_tokens == int(npz["max_kv_tokens"][0]) == 100_000
    np.testing.assert_array_equal(measured.surface.itl_ms, npz["z_itl"])
    np.testing.assert_array_equal(measured.surface.kv_usage, npz["x_kv_usage"])


def test_cluster_profile_round_trips(tmp_path: Path) -> None:
    """The cluster profiler's path: one-role online results → pick → its writer → load."""
    from dynamo_plan.profiler.measured import parse_decode, parse_prefill, pick
    from dynamo_plan.profiler.sweep import SweepSLA, sweep_meta, write_sweep_profile

    pre, dec = _online_out(tmp_path, "prefill"), _online_out(tmp_path, "decode")
    result = pick(
        {1: parse_prefill((pre / PREFILL_JSON).read_text(), "p")},
        {1: parse_decode((dec / DECODE_JSON).read_text(), "d")},
        SweepSLA(1000, 30, 100.0, 20.0),
    )
    meta = sweep_meta(
        result, model="m", system="s", backend="vllm", obtained_by={"method": "measured"}
    )
    result = dataclasses.replace(result, profile=dataclasses.replace(result.profile, meta=meta))
    write_sweep_profile(tmp_path / "cluster", result, plots=False)
    _assert_same_profile(load_profile(tmp_path / "cluster"), result.profile)


def test_configmap_data_loads_as_the_profile(h200: Path, tmp_path: Path) -> None:
    """``generate-dgd``'s profile ConfigMap, mounted as files, is the same profile."""
    from dynamo_plan.deploy.render import profile_configmap_data as rendered

    profile = dataclasses.replace(load_profile(h200), meta={"model": "llama", "sla": {"isl": 3}})
    data = rendered(profile)
    assert sorted(data) == sorted([PREFILL_JSON.name, DECODE_JSON.name, PROFILE_JSON.name])
    (tmp_path / "mounted").mkdir()
    for name, text in data.items():
        (tmp_path / "mounted" / name).write_text(text, encoding="utf-8")
    _assert_same_profile(load_profile(tmp_path / "mounted"), profile)
    # the same writer as the directory form: the same documents, only laid out compactly
    save_profile(profile, tmp_path / "dir")
    for name, text in data.items():
        assert json.loads(text) == json.loads((tmp_path / "dir" / name).read_text()), name


def test_json_form_without_meta_and_one_role(h200: Path, tmp_path: Path) -> None:
    pre, dec = profile_arrays(load_profile(h200))
    assert json_form(pre, None, None) == {
        PREFILL_JSON.name: json_form(pre, dec, {})[PREFILL_JSON.name]
    }
    save_profile_parts(tmp_path / "d", None, dec, None)
    assert (
        not (tmp_path / "d" / PREFILL_NPZ).exists() and not (tmp_path / "d" / PROFILE_JSON).exists()
    )
    assert json.loads((tmp_path / "d" / DECODE_JSON).read_text())["max_kv_tokens"] == 945029
