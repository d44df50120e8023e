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

:class:`ProfileMeta` is the one reader of ``profile.json``'s fields that sizing and rendering use
(model, system, backend, TP and GPUs per engine per role, the SLA it was made for);
:func:`profile_defaults` turns it into defaults for the commands' settings, with the note to print
where a given value overrides a recorded one. A profile without ``profile.json`` records nothing.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dynamo_plan.core.limits import MAX_GPUS_PER_NODE
from dynamo_plan.core.profile import DecodeSurface, PerformanceProfile, PrefillCurve
from dynamo_plan.errors import InputError
from dynamo_plan.formats.files import output_dir

__all__ = [
    "DECODE_JSON",
    "DECODE_KEYS",
    "DECODE_NPZ",
    "PREFILL_JSON",
    "PREFILL_KEYS",
    "PREFILL_NPZ",
    "PROFILE_JSON",
    "ProfileDefaults",
    "ProfileMeta",
    "decode_arrays",
    "is_profile_dir",
    "json_arrays",
    "json_form",
    "load_profile",
    "loaded_profile_meta",
    "parse_profile_meta",
    "prefill_arrays",
    "profile_arrays",
    "profile_configmap_data",
    "profile_defaults",
    "read_profile_meta",
    "same_model",
    "save_profile",
    "save_profile_parts",
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


# --- profile.json: what the profile was made for -------------------------------------------------

ROLES = ("prefill", "decode")
SLA_KEYS = ("isl", "osl", "ttft", "itl")
#: unit of each setting in messages (the rest have none)
_UNITS = {"isl": " tokens", "osl": " tokens", "ttft": " ms", "itl": " ms"}


@dataclass(frozen=True)
class ProfileMeta:
    """What a profile's ``profile.json`` records (each field empty when it is not recorded).

    * ``source`` — the ``profile.json`` read (None: the profile has none).
    * ``model``, ``system``, ``backend`` — as written by ``profile --offline/--online``.
    * ``tp`` / ``gpus_per_engine`` — per role (``prefill``, ``decode``), from
      ``parallelism.<role>.tp`` and ``.gpus_per_engine`` (each defaults to the other).
    * ``sla`` — ``isl``, ``osl`` (tokens), ``ttft``, ``itl`` (ms): the SLA it was made for.
    """

    source: Path | None = None
    model: str | None = None
    system: str | None = None
    backend: str | None = None
    tp: Mapping[str, int] = field(default_factory=dict)
    gpus_per_engine: Mapping[str, int] = field(default_factory=dict)
    sla: Mapping[str, float] = field(default_factory=dict)

    def settings(self) -> dict[str, Any]:
        """The recorded values under the names of the commands' settings (``plan run``'s flags in
        snake_case): ``model``, ``isl``, ``osl``, ``ttft``, ``itl``, ``prefill_engine_num_gpu``,
        ``decode_engine_num_gpu`` — only those recorded."""
        out: dict[str, Any] = {"model": self.model} if self.model else {}
        out.update(self.sla)
        for role in ROLES:
            if role in self.gpus_per_engine:
                out[f"{role}_engine_num_gpu"] = self.gpus_per_engine[role]
        return out

    def describe(self) -> str:
        """``meta-llama/Llama-3.1-70B (trtllm, TP4)``: model, backend and TP, as recorded."""
        tps = [self.tp[r] for r in ROLES if r in self.tp]
        if len(tps) == len(ROLES) and len(set(tps)) == 1:
            tp = [f"TP{tps[0]}"]  # both roles alike
        else:
            tp = [f"{r} TP{self.tp[r]}" for r in ROLES if r in self.tp]
        details = ([self.backend] if self.backend else []) + tp
        text = self.model or "an unnamed model"
        return f"{text} ({', '.join(details)})" if details else text


def _meta_text(doc: Mapping[str, Any], key: str, where: str) -> str | None:
    value = doc.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InputError(f"{where}: '{key}' must be a string, got {_printable(repr(value))}")
    return value.strip() or None


def _meta_gpus(value: Any, key: str, where: str) -> int | None:
    """A recorded TP or GPUs-per-engine: a whole number in 1..:data:`MAX_GPUS_PER_NODE` (one
    engine spans one NVLink domain at most), else InputError; None when not recorded."""
    if value is None:
        return None
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole or not 1 <= value <= MAX_GPUS_PER_NODE:
        raise InputError(
            f"{where}: '{key}' must be an integer in 1..{MAX_GPUS_PER_NODE} (the most GPUs one "
            f"engine can span), got {_printable(repr(value))}"
        )
    return int(value)


def parse_profile_meta(doc: Mapping[str, Any], where: str | Path = PROFILE_JSON) -> ProfileMeta:
    """The fields of a parsed ``profile.json`` (``profile.meta``) that sizing and rendering use;
    InputError naming ``where`` and the key for a value of the wrong type or range. Keys not
    recorded (or null) stay empty; other keys are ignored."""
    w = str(where)
    par = doc.get("parallelism")
    if par is not None and not isinstance(par, dict):
        raise InputError(f"{w}: 'parallelism' must be an object with 'prefill' and 'decode'")
    tp: dict[str, int] = {}
    gpus: dict[str, int] = {}
    for role in ROLES:
        entry = (par or {}).get(role)
        if entry is None:
            continue
        if not isinstance(entry, dict):
            raise InputError(f"{w}: 'parallelism.{role}' must be an object with 'tp'")
        t = _meta_gpus(entry.get("tp"), f"parallelism.{role}.tp", w)
        g = _meta_gpus(entry.get("gpus_per_engine"), f"parallelism.{role}.gpus_per_engine", w)
        t, g = (t or g), (g or t)
        if t is None or g is None:
            continue
        if g < t:
            raise InputError(
                f"{w}: 'parallelism.{role}.gpus_per_engine' is {g}, fewer than its tp {t}"
            )
        tp[role], gpus[role] = t, g
    sla_doc = doc.get("sla")
    if sla_doc is not None and not isinstance(sla_doc, dict):
        raise InputError(f"{w}: 'sla' must be an object with isl, osl, ttft, itl")
    sla: dict[str, float] = {}
    for key in SLA_KEYS:
        value = (sla_doc or {}).get(key)
        if value is None:
            continue
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value) or value <= 0:
            raise InputError(
                f"{w}: 'sla.{key}' must be a number > 0{_UNITS[key]}, got {_printable(repr(value))}"
            )
        sla[key] = float(value)
    return ProfileMeta(
        source=Path(where),
        model=_meta_text(doc, "model", w),
        system=_meta_text(doc, "system", w),
        backend=_meta_text(doc, "backend", w),
        tp=tp,
        gpus_per_engine=gpus,
        sla=sla,
    )


def read_profile_meta(path: Path) -> ProfileMeta:
    """:func:`parse_profile_meta` of ``path/profile.json``; an empty :class:`ProfileMeta` when
    there is none (a Dynamo profiler output directory) or ``path`` is not a directory (loading
    the profile reports that)."""
    file = path / PROFILE_JSON
    if not file.is_file():
        return ProfileMeta()
    return parse_profile_meta(_read_meta(file), file)


def loaded_profile_meta(profile: PerformanceProfile, path: Path) -> ProfileMeta:
    """:func:`parse_profile_meta` of ``profile.meta``, for a profile loaded from directory
    ``path`` (no second read); empty when ``path`` has no ``profile.json``."""
    file = path / PROFILE_JSON
    return parse_profile_meta(profile.meta, file) if file.is_file() else ProfileMeta()


def same_model(a: str, b: str) -> bool:
    """Whether model names ``a`` and ``b`` name the same model: equal ignoring case, or the same
    entry of the estimator's catalogue (an HF id and its short name, e.g.
    ``meta-llama/Llama-3.1-8B-Instruct`` and ``llama-3.1-8b``)."""
    if a.strip().lower() == b.strip().lower():
        return True
    from dynamo_plan.estimator.catalog import load_model

    try:
        return load_model(a).name == load_model(b).name
    except InputError:  # not in the catalogue
        return False


@dataclass(frozen=True)
class ProfileDefaults:
    """Settings after :func:`profile_defaults`: ``values`` (setting → value), ``sources``
    (setting → ``flag``, ``config file``, ``profile.json`` or ``default``) and ``notes`` (one
    line per given value that overrides a different recorded one)."""

    values: dict[str, Any]
    sources: dict[str, str]
    notes: list[str]


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _differs(name: str, given: Any, recorded: Any) -> bool:
    if name == "model":
        return not same_model(str(given), str(recorded))
    return bool(float(given) != float(recorded))


def profile_defaults(
    meta: ProfileMeta, given: Mapping[str, Any], explicit: Mapping[str, str]
) -> ProfileDefaults:
    """Settings ``given`` (name → the value a command would use without the profile: a flag's,
    a config file's or the default; None: none) with the profile's recorded values in place of
    those not given explicitly. ``explicit`` maps each setting given explicitly to how it was
    given, for the note: the flag (``--ttft``; source ``flag``), else e.g. ``run.yaml's ttft:``
    (source ``config file``).

    Precedence: an explicit value > the profile's ``profile.json`` > the default. An explicit
    value that differs from a recorded one keeps and adds a note, e.g. ``--ttft 500 ms overrides
    the profile's 200 ms (prof/profile.json)``; models differ as :func:`same_model` says."""
    recorded = meta.settings()
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    notes: list[str] = []
    for name, value in given.items():
        how = explicit.get(name) if value is not None else None
        if how is not None:
            values[name] = value
            sources[name] = "flag" if how.startswith("--") else "config file"
            if name in recorded and _differs(name, value, recorded[name]):
                unit = _UNITS.get(name, "")
                notes.append(
                    f"{how} {_show(value)}{unit} overrides the profile's "
                    f"{_show(recorded[name])}{unit} ({meta.source})"
                )
        elif name in recorded:
            values[name], sources[name] = recorded[name], "profile.json"
        else:
            values[name], sources[name] = value, "default"
    return ProfileDefaults(values, sources, notes)


def prefill_arrays(
    isl: np.ndarray, ttft_ms: np.ndarray, thpt_per_gpu: np.ndarray
) -> dict[str, np.ndarray]:
    """A prefill part under Dynamo's keys (:data:`PREFILL_KEYS`): ISLs (tokens) as int64 when they
    are whole numbers (as Dynamo writes them), else float64; TTFT (ms); tokens/s/GPU."""
    isl = np.asarray(isl)
    return {
        "prefill_isl": isl.astype(np.int64) if np.all(isl == np.round(isl)) else isl,
        "prefill_ttft": np.asarray(ttft_ms),
        "prefill_thpt_per_gpu": np.asarray(thpt_per_gpu),
    }


def decode_arrays(
    kv_usage: np.ndarray,
    context: np.ndarray,
    itl_ms: np.ndarray,
    thpt_per_gpu: np.ndarray,
    max_kv_tokens: int,
) -> dict[str, np.ndarray]:
    """A decode part under Dynamo's keys (:data:`DECODE_KEYS`): KV usage (0..1), context
    (tokens), ITL (ms), tokens/s/GPU and ``max_kv_tokens`` (tokens) as a 1-element int64 array."""
    return {
        "x_kv_usage": np.asarray(kv_usage),
        "y_context_length": np.asarray(context),
        "z_itl": np.asarray(itl_ms),
        "z_thpt_per_gpu": np.asarray(thpt_per_gpu),
        "max_kv_tokens": np.array([max_kv_tokens], dtype=np.int64),
    }


def profile_arrays(
    profile: PerformanceProfile,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``(prefill, decode)`` parts of ``profile`` (:func:`prefill_arrays`, :func:`decode_arrays`)."""
    pf, dc = profile.prefill, profile.decode
    return (
        prefill_arrays(pf.isl, pf.ttft_ms, pf.thpt_per_gpu),
        decode_arrays(dc.kv_usage, dc.context, dc.itl_ms, dc.thpt_per_gpu, profile.max_kv_tokens),
    )


def _json_doc(arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    doc: dict[str, Any] = {k: np.asarray(v).tolist() for k, v in arrays.items()}
    if "max_kv_tokens" in arrays:  # an integer, as Dynamo writes it
        doc["max_kv_tokens"] = int(np.asarray(arrays["max_kv_tokens"]).reshape(-1)[0])
    return doc


def json_form(
    prefill: Mapping[str, np.ndarray] | None,
    decode: Mapping[str, np.ndarray] | None,
    meta: Mapping[str, Any] | None,
    *,
    compact: bool = False,
) -> dict[str, str]:
    """File name → text of a profile's JSON form: ``prefill_raw_data.json`` and
    ``decode_raw_data.json`` for the parts given (None: that role was not measured), and
    ``profile.json`` (keys sorted) unless ``meta`` is None. The directory form is indented and
    ends lines; ``compact`` (the ConfigMap form) writes the raw data on one line and no final
    newline."""
    end = "" if compact else "\n"
    indent = None if compact else 2
    texts: dict[str, str] = {}
    for rel, arrays in ((PREFILL_JSON, prefill), (DECODE_JSON, decode)):
        if arrays is not None:
            texts[rel.name] = json.dumps(_json_doc(arrays), indent=indent) + end
    if meta is not None:
        texts[PROFILE_JSON.name] = json.dumps(meta, indent=2, sort_keys=True) + end
    return texts


def profile_configmap_data(profile: PerformanceProfile) -> dict[str, str]:
    """ConfigMap ``data`` of ``profile``: its JSON form, compact (:func:`json_form`), with
    ``profile.json`` (its meta) always present; mounted as a directory it loads back."""
    return json_form(*profile_arrays(profile), profile.meta, compact=True)


def save_profile_parts(
    path: Path,
    prefill: Mapping[str, np.ndarray] | None,
    decode: Mapping[str, np.ndarray] | None,
    meta: Mapping[str, Any] | None,
    json_form_too: bool = True,
) -> None:
    """Write the parts given into directory ``path`` (created): each role's npz (Dynamo's
    layout; None: the role was not measured), with ``json_form_too`` its JSON form, and
    ``profile.json`` unless ``meta`` is None. The one writer of profile data: a whole profile
    (:func:`save_profile`) or one role of an online measurement.

    Writes in place; callers wanting all-or-nothing write into a temporary directory and rename
    (:func:`write_profile_dir`).
    """
    try:
        for rel, arrays in ((PREFILL_NPZ, prefill), (DECODE_NPZ, decode)):
            if arrays is None:
                continue
            (path / rel).parent.mkdir(parents=True, exist_ok=True)
            with open(path / rel, "wb") as f:
                np.savez(f, **arrays)  # type: ignore[arg-type]
        parts = (prefill, decode) if json_form_too else (None, None)
        for name, text in json_form(*parts, meta).items():
            (path / name).write_text(text, encoding="utf-8")
    except OSError as e:
        raise InputError(f"{path}: cannot write the profile ({e.strerror or e})") from e


def save_profile(profile: PerformanceProfile, path: Path, json_form: bool = True) -> None:
    """Write ``profile`` into directory ``path`` (created): npz files, JSON form (``json_form``),
    ``profile.json`` when ``profile.meta`` records anything (:func:`save_profile_parts`)."""
    save_profile_parts(path, *profile_arrays(profile), profile.meta or None, json_form)


def write_profile_dir(path: Path, fill: Callable[[Path], None]) -> None:
    """Create or replace the profile directory ``path`` all-or-nothing.

    ``fill(tmp)`` writes everything into a fresh temporary directory beside ``path``; only when it
    returns is that directory renamed into place (replacing an earlier profile). On any failure
    the temporary directory is removed and ``path`` is left as it was. A ``path`` that is a file,
    or a non-empty directory that is not a profile, is refused (InputError). A symbolic link is
    followed: its target directory is replaced and the link stays. Parent directories created
    for ``path`` are removed again when the profile is not written.
    """
    shown = path
    path = Path(os.path.realpath(path))  # replace a link's target, never the link
    if path.exists():
        if not path.is_dir():
            raise InputError(f"{shown}: exists and is not a directory; choose another --out")
        if any(path.iterdir()) and not is_profile_dir(path):
            raise InputError(
                f"{shown}: non-empty directory that is not a performance profile; "
                "refusing to overwrite it (choose an empty or new --out)"
            )
    with output_dir(path.parent, "the directory of --out"):
        try:
            # not tempfile.mkdtemp: its 0700 mode would stick to the published directory
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
            tmp.mkdir()
        except OSError as e:
            raise InputError(
                f"{shown}: cannot create the output directory ({e.strerror or e})"
            ) from e
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
                raise InputError(f"{shown}: cannot write the profile ({e.strerror or e})") from e
            raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
