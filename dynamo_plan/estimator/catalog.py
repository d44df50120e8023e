"""The shipped model and GPU catalogs (``data/models.yaml``, ``data/gpus.yaml``) and the
readers for a user's HF ``config.json`` (``--model-config``) and GPU spec YAML (``--gpu-spec``).

Names match case-insensitively against the canonical name, its aliases and HF ids; an unknown
name raises :class:`InputError` listing the known names and the nearest one (difflib).
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import fields
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from dynamo_plan.errors import InputError
from dynamo_plan.estimator.arch import ALL_DTYPES, GpuSpec, ModelArch
from dynamo_plan.formats.files import read_text

_MODEL_FIELDS = {f.name for f in fields(ModelArch)} - {"name"}
_GPU_FIELDS = [f.name for f in fields(GpuSpec) if f.name not in ("name", "dtypes")]


@cache
def _catalog(filename: str) -> dict[str, dict[str, Any]]:
    import yaml  # lazy: keeps `import dynamo_plan.estimator` cheap

    text = resources.files("dynamo_plan.estimator").joinpath("data", filename).read_text("utf-8")
    data: dict[str, dict[str, Any]] = yaml.safe_load(text)
    return data


@cache
def _index(filename: str) -> dict[str, str]:
    """lower-case name or alias -> canonical name."""
    out: dict[str, str] = {}
    for canon, entry in _catalog(filename).items():
        out[canon.lower()] = canon
        for alias in entry.get("aliases", []):
            out[str(alias).lower()] = canon
    return out


def _resolve(filename: str, kind: str, name: str) -> str:
    index = _index(filename)
    key = name.strip().lower()
    if key in index:
        return index[key]
    # an HF id whose basename is known (e.g. "my-org/Llama-3.1-8B")
    base = key.rsplit("/", 1)[-1]
    if base in index:
        return index[base]
    known = sorted(_catalog(filename))
    near = difflib.get_close_matches(key, list(index), n=1, cutoff=0.0)
    hint = f"; did you mean '{index[near[0]]}'?" if near else ""
    raise InputError(f"unknown {kind} '{name}'{hint} known: {', '.join(known)}")


def _read(path: Path, what: str) -> str:
    """The UTF-8 text of a file the user named; InputError "PATH: file not found", or one line
    for an unreadable, binary or UTF-16 file (:func:`dynamo_plan.formats.files.read_text`)."""
    if not path.exists() and not path.is_symlink():
        raise InputError(f"{path}: file not found")
    return read_text(path, what)


def known_models() -> list[str]:
    """Canonical names of the catalogued models."""
    return sorted(_catalog("models.yaml"))


def known_gpus() -> list[str]:
    """Canonical names of the catalogued GPUs."""
    return sorted(_catalog("gpus.yaml"))


def model_entry(name: str) -> dict[str, Any]:
    """The raw catalog entry (with ``source``, ``aliases``, ``aic_name``) for a model name."""
    return dict(_catalog("models.yaml")[_resolve("models.yaml", "model", name)])


def load_model(name: str | None = None, config_path: Path | None = None) -> ModelArch:
    """A catalogued model by name or alias, or the architecture in an HF ``config.json``.

    With ``config_path`` the file wins and ``name`` (if given) only names the result.
    """
    if config_path is not None:
        return parse_hf_config(config_path, name)
    if not name:
        raise InputError("give a model name (--model) or an HF config.json (--model-config)")
    canon = _resolve("models.yaml", "model", name)
    entry = _catalog("models.yaml")[canon]
    return ModelArch(name=canon, **{k: v for k, v in entry.items() if k in _MODEL_FIELDS})


# HF config.json key -> ModelArch field; first key present wins.
_HF_KEYS: dict[str, tuple[str, ...]] = {
    "num_layers": ("num_hidden_layers", "n_layer", "num_layers"),
    "hidden_size": ("hidden_size", "n_embd", "d_model"),
    "num_heads": ("num_attention_heads", "n_head"),
    "num_kv_heads": ("num_key_value_heads", "num_kv_heads"),
    "head_dim": ("head_dim",),
    "intermediate_size": ("intermediate_size", "ffn_hidden_size"),
    "vocab_size": ("vocab_size",),
    "max_position_embeddings": ("max_position_embeddings", "max_seq_len", "n_positions"),
    "num_experts": ("num_local_experts", "num_experts", "n_routed_experts"),
    "experts_per_token": ("num_experts_per_tok", "experts_per_token", "num_experts_per_token"),
    "num_shared_experts": ("n_shared_experts", "num_shared_experts"),
    "moe_intermediate_size": ("moe_intermediate_size",),
    "first_k_dense_layers": ("first_k_dense_replace",),
    "kv_lora_rank": ("kv_lora_rank",),
    "q_lora_rank": ("q_lora_rank",),
    "qk_rope_head_dim": ("qk_rope_head_dim",),
    "qk_nope_head_dim": ("qk_nope_head_dim",),
    "v_head_dim": ("v_head_dim",),
    "sliding_window": ("sliding_window",),
}
_REQUIRED = ("num_layers", "hidden_size", "num_heads", "intermediate_size", "vocab_size")


def parse_hf_config(path: Path, name: str | None = None) -> ModelArch:
    """Read the architecture from a Hugging Face ``config.json`` (llama, qwen2/3, qwen3_moe,
    mixtral, deepseek_v3, gpt_oss key sets; a multimodal ``text_config`` is used when present).

    Defaults: ``num_key_value_heads`` = heads, ``head_dim`` = hidden / heads,
    ``max_position_embeddings`` = 4096. ``sliding_window`` counts only for gpt-oss style
    alternating layers (``layer_types`` containing ``sliding_attention``).
    """
    text = _read(Path(path), "model config")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}:{e.lineno}: not valid JSON: {e.msg}") from e
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected a JSON object, found {type(raw).__name__}")
    cfg: dict[str, Any] = raw.get("text_config") or raw

    values: dict[str, Any] = {}
    for field, keys in _HF_KEYS.items():
        for key in keys:
            if cfg.get(key) is not None:
                values[field] = (key, cfg[key])
                break
    missing = [_HF_KEYS[f][0] for f in _REQUIRED if f not in values]
    if missing:
        raise InputError(f"{path}: missing required field '{missing[0]}'")
    arch: dict[str, Any] = {}
    for field, (key, value) in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InputError(f"{path}: '{key}' must be a non-negative integer, found {value!r}")
        arch[field] = value
    for field in ("num_layers", "hidden_size", "num_heads", "vocab_size"):
        if arch[field] == 0:
            raise InputError(f"{path}: '{values[field][0]}' must be > 0, found 0")
    arch.setdefault("num_kv_heads", arch["num_heads"])
    arch.setdefault("head_dim", arch["hidden_size"] // arch["num_heads"])
    arch.setdefault("max_position_embeddings", 4096)
    layer_types = cfg.get("layer_types") or []
    if "sliding_attention" not in layer_types:
        arch.pop("sliding_window", None)
    if arch.get("num_experts", 0) and not arch.get("experts_per_token", 0):
        raise InputError(f"{path}: MoE config without 'num_experts_per_tok'")
    tie = bool(cfg.get("tie_word_embeddings", raw.get("tie_word_embeddings", False)))
    label = name or str(
        cfg.get("_name_or_path") or raw.get("_name_or_path") or Path(path).parent.name
    )
    return ModelArch(name=label, tie_word_embeddings=tie, **arch)


def load_gpu(name: str | None = None, spec_path: Path | None = None) -> GpuSpec:
    """A catalogued GPU by name or alias, or a spec YAML with the :class:`GpuSpec` fields.

    A spec file holds ``name`` (optional; default the file stem), the five numbers
    ``bf16_tflops, fp8_tflops, hbm_gbps, hbm_gib, nvlink_gbps`` (units as in data/gpus.yaml) and
    optionally ``dtypes`` (the precisions its tensor cores run; default ``[bf16, fp8]``).
    """
    if spec_path is not None:
        return _parse_gpu_spec(Path(spec_path), name)
    if not name:
        raise InputError("give a GPU name (--system) or a spec file (--gpu-spec)")
    canon = _resolve("gpus.yaml", "GPU", name)
    entry = _catalog("gpus.yaml")[canon]
    dtypes = _dtypes(entry.get("dtypes", list(ALL_DTYPES)), f"gpus.yaml {canon}")
    return GpuSpec(name=canon, **{k: float(entry[k]) for k in _GPU_FIELDS}, dtypes=dtypes)


def _dtypes(raw: Any, where: str) -> tuple[str, ...]:
    """A ``dtypes`` list (the precisions the GPU's tensor cores run) as a tuple; InputError for
    an empty list or a name outside bf16, fp8."""
    if (
        not isinstance(raw, list)
        or not raw
        or any(not isinstance(d, str) or d not in ALL_DTYPES for d in raw)
    ):
        raise InputError(
            f"{where}: 'dtypes' must be a non-empty list of {', '.join(ALL_DTYPES)}, found {raw!r}"
        )
    return tuple(dict.fromkeys(raw))


def _parse_gpu_spec(path: Path, name: str | None) -> GpuSpec:
    import yaml

    text = _read(path, "GPU spec")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise InputError(f"{path}{where}: not valid YAML") from e
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected a mapping with {', '.join(_GPU_FIELDS)}")
    unknown = sorted(set(raw) - {*_GPU_FIELDS, "name", "aliases", "dtypes"})
    if unknown:
        raise InputError(f"{path}: unknown field '{unknown[0]}'; expected {', '.join(_GPU_FIELDS)}")
    vals: dict[str, float] = {}
    for key in _GPU_FIELDS:
        if key not in raw:
            raise InputError(f"{path}: missing field '{key}'")
        v = raw[key]
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
            raise InputError(f"{path}: '{key}' must be a positive number, found {v!r}")
        vals[key] = float(v)
    dtypes = _dtypes(raw["dtypes"], str(path)) if "dtypes" in raw else ALL_DTYPES
    return GpuSpec(name=str(raw.get("name") or name or path.stem), **vals, dtypes=dtypes)
