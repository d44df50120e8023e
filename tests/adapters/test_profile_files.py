"""Profile directories: the real H200 profile round-trips by Dynamo's keys; JSON-only form loads;
bad files name the file and key; output directories are written all-or-nothing."""

from __future__ import annotations

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
    load_profile,
    save_profile,
    write_profile_dir,
)
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
    import dataclasses

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
