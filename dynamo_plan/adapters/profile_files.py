"""Read and write a performance-profile directory in Dynamo's layout (DESIGN.md §3).

::

    DIR/selected_prefill_interpolation/raw_data.npz   prefill_isl, prefill_ttft, prefill_thpt_per_gpu
    DIR/selected_decode_interpolation/raw_data.npz    x_kv_usage, y_context_length, z_itl,
                                                      z_thpt_per_gpu, max_kv_tokens (1 element)
    DIR/prefill_raw_data.json, DIR/decode_raw_data.json   the same keys as lists (ConfigMap form;
                                                      ``max_kv_tokens`` an integer, as Dynamo writes)
    DIR/profile.json                                  summary (optional; becomes ``profile.meta``)

Loading prefers the npz files and falls back to the JSON form per role, so both a bare Dynamo
profile (npz only) and a ConfigMap dump (JSON only) load. Every problem is an InputError naming the
file and, where it applies, the key.
"""

from __future__ import annotations

import json
import shutil
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dynamo_plan.core.profile import DecodeSurface, PerformanceProfile, PrefillCurve
from dynamo_plan.errors import InputError

__all__ = [
    "DECODE_JSON",
    "DECODE_KEYS",
    "DECODE_NPZ",
    "PREFILL_JSON",
    "PREFILL_KEYS",
    "PREFILL_NPZ",
    "PROFILE_JSON",
    "is_profile_dir",
    "json_arrays",
    "load_profile",
    "save_profile",
    "write_profile_dir",
]

PREFILL_NPZ = Path("selected_prefill_interpolation") / "raw_data.npz"
DECODE_NPZ = Path("selected_decode_interpolation") / "raw_data.npz"
PREFILL_JSON = Path("prefill_raw_data.json")
DECODE_JSON = Path("decode_raw_data.json")
PROFILE_JSON = Path("profile.json")

PREFILL_KEYS = ("prefill_isl", "prefill_ttft", "prefill_thpt_per_gpu")
DECODE_KEYS = ("x_kv_usage", "y_context_length", "z_itl", "z_thpt_per_gpu", "max_kv_tokens")


def is_profile_dir(path: Path) -> bool:
    """True when ``path`` holds a prefill and a decode part (npz or JSON form)."""
    return ((path / PREFILL_NPZ).is_file() or (path / PREFILL_JSON).is_file()) and (
        (path / DECODE_NPZ).is_file() or (path / DECODE_JSON).is_file()
    )


def _read_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in keys if k not in data.files]
            if missing:
                raise InputError(
                    f"{path}: missing key '{missing[0]}'; expected keys {', '.join(keys)}, "
                    f"found {', '.join(map(_printable, data.files)) or 'none'}"
                )
            out: dict[str, np.ndarray] = {}
            for k in keys:
                raw = data[k]
                try:
                    out[k] = np.asarray(raw, dtype=np.float64)
                except (TypeError, ValueError) as e:
                    raise InputError(
                        f"{path}: key '{k}' must hold numbers, got an array of {raw.dtype}"
                    ) from e
            return out
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, RuntimeError) as e:
        # RuntimeError (and its subclasses): zipfile meets encryption or compression-method flags
        raise InputError(f"{path}: not a readable .npz file ({_printable(str(e))})") from e


def _printable(text: str) -> str:
    """``text`` with non-printable characters escaped (error messages stay one readable line)."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def _parse_json(path: Path) -> Any:
    """The parsed JSON document in ``path``; InputError naming the file (and line) otherwise."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from e
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    except json.JSONDecodeError as e:
        raise InputError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from e


def json_arrays(doc: Any, keys: tuple[str, ...], where: str) -> dict[str, np.ndarray]:
    """``keys`` of a parsed ``*_raw_data.json`` document as float arrays; InputError naming
    ``where`` (a path, a ConfigMap) and the key."""
    if not isinstance(doc, dict):
        raise InputError(f"{where}: expected a JSON object with keys {', '.join(keys)}")
    out: dict[str, np.ndarray] = {}
    for k in keys:
        if k not in doc:
            raise InputError(f"{where}: missing key '{k}'; expected keys {', '.join(keys)}")
        try:
            out[k] = np.asarray(doc[k], dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise InputError(f"{where}: key '{k}' must be a number or a list of numbers") from e
    return out


def _read_json(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    return json_arrays(_parse_json(path), keys, str(path))


def _read_part(root: Path, npz: Path, js: Path, keys: tuple[str, ...]) -> tuple[Path, dict]:
    if (root / npz).is_file():
        return root / npz, _read_npz(root / npz, keys)
    if (root / js).is_file():
        return root / js, _read_json(root / js, keys)
    raise InputError(f"{root}: no profile data; expected {npz} or {js}")


def _max_kv(path: Path, value: np.ndarray) -> int:
    flat = np.asarray(value).reshape(-1)
    if flat.size != 1 or not np.isfinite(flat[0]) or flat[0] != np.floor(flat[0]):
        raise InputError(f"{path}: key 'max_kv_tokens' must be one integer, got {flat.tolist()}")
    return int(flat[0])


def load_profile(path: Path) -> PerformanceProfile:
    """Load a profile directory (npz or JSON form, optional ``profile.json``)."""
    if not path.is_dir():
        raise InputError(f"{path}: not a directory; expected a performance-profile directory")
    p_file, p = _read_part(path, PREFILL_NPZ, PREFILL_JSON, PREFILL_KEYS)
    d_file, d = _read_part(path, DECODE_NPZ, DECODE_JSON, DECODE_KEYS)
    try:
        prefill = PrefillCurve(p["prefill_isl"], p["prefill_ttft"], p["prefill_thpt_per_gpu"])
    except InputError as e:
        raise InputError(f"{p_file}: {e}") from e
    try:
        decode = DecodeSurface(
            d["x_kv_usage"], d["y_context_length"], d["z_itl"], d["z_thpt_per_gpu"]
        )
    except InputError as e:
        raise InputError(f"{d_file}: {e}") from e
    max_kv = _max_kv(d_file, d["max_kv_tokens"])
    if max_kv <= 0:
        raise InputError(f"{d_file}: key 'max_kv_tokens' is {max_kv}; expected a positive integer")
    meta = _read_meta(path / PROFILE_JSON) if (path / PROFILE_JSON).is_file() else {}
    return PerformanceProfile(prefill, decode, max_kv, meta)


def _read_meta(path: Path) -> dict[str, Any]:
    doc = _parse_json(path)
    if not isinstance(doc, dict):
        raise InputError(f"{path}: expected a JSON object")
    return doc


def _isl_array(isl: np.ndarray) -> np.ndarray:
    """ISLs as int64 when they are whole numbers (as Dynamo writes them), else float64."""
    return isl.astype(np.int64) if np.all(isl == np.round(isl)) else isl


def _prefill_arrays(profile: PerformanceProfile) -> dict[str, np.ndarray]:
    pf = profile.prefill
    return {
        "prefill_isl": _isl_array(pf.isl),
        "prefill_ttft": pf.ttft_ms,
        "prefill_thpt_per_gpu": pf.thpt_per_gpu,
    }


def _decode_arrays(profile: PerformanceProfile) -> dict[str, np.ndarray]:
    dc = profile.decode
    return {
        "x_kv_usage": dc.kv_usage,
        "y_context_length": dc.context,
        "z_itl": dc.itl_ms,
        "z_thpt_per_gpu": dc.thpt_per_gpu,
        "max_kv_tokens": np.array([profile.max_kv_tokens], dtype=np.int64),
    }


def save_profile(profile: PerformanceProfile, path: Path, json_form: bool = True) -> None:
    """Write ``profile`` into directory ``path`` (created): npz files, JSON form, ``profile.json``.

    Writes in place; callers wanting all-or-nothing write into a temporary directory and rename.
    """
    pre, dec = _prefill_arrays(profile), _decode_arrays(profile)
    try:
        for rel, arrays in ((PREFILL_NPZ, pre), (DECODE_NPZ, dec)):
            (path / rel).parent.mkdir(parents=True, exist_ok=True)
            with open(path / rel, "wb") as f:
                np.savez(f, **arrays)  # type: ignore[arg-type]
        if json_form:
            dec_json: dict[str, Any] = {k: v.tolist() for k, v in dec.items()}
            dec_json["max_kv_tokens"] = int(profile.max_kv_tokens)
            _write_json(path / PREFILL_JSON, {k: v.tolist() for k, v in pre.items()})
            _write_json(path / DECODE_JSON, dec_json)
        if profile.meta:
            _write_json(path / PROFILE_JSON, profile.meta)
    except OSError as e:
        raise InputError(f"{path}: cannot write the profile ({e.strerror or e})") from e


def _write_json(path: Path, doc: Any) -> None:
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


def write_profile_dir(path: Path, fill: Callable[[Path], None]) -> None:
    """Create or replace the profile directory ``path`` all-or-nothing.

    ``fill(tmp)`` writes everything into a fresh temporary directory beside ``path``; only when it
    returns is that directory renamed into place (replacing an earlier profile). On any failure
    the temporary directory is removed and ``path`` is left as it was. A ``path`` that is a file,
    or a non-empty directory that is not a profile, is refused (InputError).
    """
    if path.exists():
        if not path.is_dir():
            raise InputError(f"{path}: exists and is not a directory; choose another --out")
        if any(path.iterdir()) and not is_profile_dir(path):
            raise InputError(
                f"{path}: non-empty directory that is not a performance profile; "
                "refusing to overwrite it (choose an empty or new --out)"
            )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # not tempfile.mkdtemp: its 0700 mode would stick to the published directory
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
        tmp.mkdir()
    except OSError as e:
        raise InputError(f"{path}: cannot create the output directory ({e.strerror or e})") from e
    old: Path | None = None
    try:
        fill(tmp)
        if path.exists():
            old = path.with_name(f"{tmp.name}.old")
            path.rename(old)
        tmp.rename(path)
    except BaseException as e:
        if old is not None and not path.exists():
            old.rename(path)
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            raise InputError(f"{path}: cannot write the profile ({e.strerror or e})") from e
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
