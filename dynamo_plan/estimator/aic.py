"""Adapter to NVIDIA AI Configurator (``pip install 'dynamo-plan[aiconfigurator]'``, the
``aiconfigurator`` package 0.12: ~120 MB with its measured-kernel databases). Same interface as
the roofline estimator; latencies come from AIC's per-op silicon database.

The calls are those of AIC's own ``cli estimate --mode static_ctx|static_gen``
(``aiconfigurator.cli.api._run_static_estimate``): ``build_model_config`` → ``get_model`` →
``InferenceSession.run_static``, with the model, database and session built once per TP and phase
and reused for every point (the first point of a run costs ~2 s: import and database load; the
rest ~1 ms each). Prefill = ``static_ctx`` of one request (``ttft``, ms); decode = ``static_gen``
of ``batch`` sequences for 2 tokens after ``context`` (``tpot``, ms, one step).

Memory (``fits``/``max_kv_tokens``) uses the roofline accounting so both estimators agree on what
fits. Model names map to AIC's bundled Hugging Face configs (``aiconfigurator_core/model_configs``)
through the catalog's HF ids; ``hf_id`` (a DGDR's ``aicHfId``) overrides that.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from dynamo_plan.core.backends import BackendName
from dynamo_plan.errors import InputError
from dynamo_plan.estimator.arch import GpuSpec, ModelArch
from dynamo_plan.estimator.base import Dtype, EstimatePoint
from dynamo_plan.estimator.catalog import model_entry
from dynamo_plan.estimator.roofline import RooflineEstimator

INSTALL_HINT = (
    "the aiconfigurator estimator needs the 'aiconfigurator' package: "
    "pip install 'dynamo-plan[aiconfigurator]' (or: pip install aiconfigurator==0.12.0); "
    "or use --estimator roofline (built in) or --estimator auto"
)
_QUANT = {"fp8": "fp8", "bf16": "bfloat16"}
_LOGGERS = ("aiconfigurator", "aiconfigurator_core")


def aiconfigurator_available() -> bool:
    """True when ``import aiconfigurator`` would succeed (checked without importing it)."""
    return importlib.util.find_spec("aiconfigurator") is not None


def aiconfigurator_version() -> str | None:
    """The installed ``aiconfigurator`` package version, or None when it is absent."""
    try:
        return metadata.version("aiconfigurator")
    except metadata.PackageNotFoundError:
        return None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """AIC logs a warning per low-fidelity database file it loads; keep them off our stderr."""
    loggers = [logging.getLogger(n) for n in _LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


@cache
def _bundled_configs() -> Path:
    spec = importlib.util.find_spec("aiconfigurator_core")
    if spec is None or spec.origin is None:
        return Path("/nonexistent")
    return Path(spec.origin).parent / "model_configs"


def _bundled(hf_id: str) -> bool:
    return (_bundled_configs() / f"{hf_id.replace('/', '--')}_config.json").is_file()


def aic_model_path(model: ModelArch, requested: str | None = None) -> str | None:
    """AIC's model path (an HF id whose config AIC ships) for a catalogued model: the first of
    ``requested``, the catalog's ``source`` repository and its HF-id aliases that AIC bundles;
    None when none is (AIC would download the config from the Hub)."""
    candidates = [requested] if requested and "/" in requested else []
    try:
        entry = model_entry(model.name)
    except InputError:
        entry = {}
    source = str(entry.get("source") or "")
    if "/" in source:
        candidates.append("/".join(source.split("/")[:2]))
    candidates += [a for a in entry.get("aliases") or [] if isinstance(a, str) and "/" in a]
    return next((c for c in candidates if _bundled(c)), None)


@cache
def _supported() -> dict[str, dict[str, list[str]]]:
    from aiconfigurator.sdk.perf_database import get_supported_databases

    with _quiet():
        return {
            s: {b: list(v) for b, v in bs.items()} for s, bs in get_supported_databases().items()
        }


def resolve_version(system: str, backend: str, version: str | None) -> str:
    """The database version AIC will use: ``version`` (a literal or the slot aliases
    ``current``/``previous``/``next``) resolved, or the current one; InputError when AIC has no
    database for ``system``/``backend``/``version`` (lists what it has)."""
    from aiconfigurator.sdk.perf_database import get_latest_database_version, resolve_query_version

    have = _supported()
    if system not in have:
        raise InputError(
            f"aiconfigurator has no database for system '{system}' "
            f"(it has {', '.join(sorted(have))})"
        )
    if backend not in have[system]:
        raise InputError(f"aiconfigurator has no {backend} database for {system}")
    with _quiet():
        if version is None:
            latest = get_latest_database_version(system=system, backend=backend)
            if latest is None:
                raise InputError(f"aiconfigurator has no {backend} database for {system}")
            return str(latest)
        try:
            resolved = str(resolve_query_version(system, backend, version))
        except ValueError as e:
            raise InputError(
                f"aiconfigurator has no {backend} {version} database for {system} "
                f"(versions: {', '.join(sorted(have[system][backend]))}): {e}"
            ) from None
    if resolved not in have[system][backend]:
        raise InputError(
            f"aiconfigurator has no {backend} {resolved} database for {system} "
            f"(versions: {', '.join(sorted(have[system][backend]))})"
        )
    return resolved


@dataclass(frozen=True)
class Coverage:
    """Whether AIC covers a (model, system, backend, version): ``covered``, the AIC model path
    and resolved version when it does, else ``reason`` (one line)."""

    covered: bool
    reason: str = ""
    model_path: str | None = None
    version: str | None = None


def aic_coverage(
    model: ModelArch,
    system: str,
    backend: str,
    version: str | None = None,
    hf_id: str | None = None,
) -> Coverage:
    """Does the installed AIC cover this model on ``system`` with ``backend`` (and ``version``)?
    Checks the package, its databases (without loading them), that the model's config ships with
    it, and AIC's support matrix (``check_support``: agg or disagg PASS)."""
    if not aiconfigurator_available():
        return Coverage(False, "the aiconfigurator package is not installed")
    path = hf_id if hf_id and _bundled(hf_id) else aic_model_path(model, hf_id)
    if path is None:
        return Coverage(False, f"aiconfigurator ships no config for {hf_id or model.name}")
    try:
        resolved = resolve_version(system, backend, version)
    except InputError as e:
        return Coverage(False, str(e))
    from aiconfigurator.sdk.common import check_support

    with _quiet():
        support = check_support(path, system, backend, resolved)
    if not (support.agg_supported or support.disagg_supported):
        return Coverage(
            False, f"aiconfigurator's support matrix has no PASS for {path} on {system}/{backend}"
        )
    return Coverage(True, model_path=path, version=resolved)


class AiConfiguratorEstimator:
    """Estimator backed by AIC's measured kernel databases (see the module docstring)."""

    name = "aiconfigurator"

    def __init__(
        self,
        model: ModelArch,
        gpu: GpuSpec,
        backend: BackendName = "trtllm",
        dtype: Dtype = "fp8",
        kv_dtype: Dtype | None = None,
        mem_util: float = 0.9,
        backend_version: str | None = None,
        hf_id: str | None = None,
        system: str | None = None,
    ) -> None:
        if not aiconfigurator_available():
            raise InputError(INSTALL_HINT)
        self._memory = RooflineEstimator(model, gpu, backend, dtype, kv_dtype, mem_util)
        self.model = model
        self.backend: BackendName = backend
        self.system = system or gpu.name
        self.dtype: Dtype = dtype
        self.kv_dtype: Dtype = self._memory.kv_dtype
        # a config AIC ships (the requested HF id, else the catalogued model's own repository)
        # before one it would download from the Hub
        path = aic_model_path(model, hf_id) or hf_id
        if path is None:
            raise InputError(
                f"aiconfigurator ships no config for model '{model.name}'; give its HF id "
                "(a DGDR's aicHfId) or use --estimator roofline"
            )
        self.model_path = path
        self.backend_version = resolve_version(self.system, backend, backend_version)
        self.version = f"{aiconfigurator_version()} ({backend} {self.backend_version})"
        self._sessions: dict[tuple[int, bool], Any] = {}
        self._db: Any = None

    def _session(self, tp: int, context_phase: bool) -> Any:
        key = (tp, context_phase)
        if key in self._sessions:
            return self._sessions[key]
        from aiconfigurator.sdk.backends.factory import get_backend
        from aiconfigurator.sdk.config_builders import build_model_config
        from aiconfigurator.sdk.inference_session import InferenceSession
        from aiconfigurator.sdk.models import check_is_moe, get_model, resolve_context_fmha_by_data
        from aiconfigurator.sdk.perf_database import get_database_view

        with _quiet():
            if self._db is None:
                self._db = get_database_view(
                    self.system, self.backend, self.backend_version, database_mode="SILICON"
                )
                if self._db is None:
                    raise InputError(
                        f"aiconfigurator could not load its {self.backend} "
                        f"{self.backend_version} database for {self.system}"
                    )
            moe = bool(check_is_moe(self.model_path))
            gemm = _QUANT[self.dtype]
            cfg = build_model_config(
                tp_size=tp,
                pp_size=1,
                attention_dp_size=1,
                moe_tp_size=tp if moe else None,  # type: ignore[arg-type]
                moe_ep_size=1 if moe else None,  # type: ignore[arg-type]
                gemm_quant_mode=gemm,
                kvcache_quant_mode=_QUANT[self.kv_dtype],
                moe_quant_mode=gemm if moe else None,
            )
            if moe:
                from aiconfigurator.sdk.moe_comm_resolver import resolve_model_config_moe_comm

                resolve_model_config_moe_comm(
                    cfg,
                    model_path=self.model_path,
                    backend_name=self.backend,
                    database=self._db,
                    required_phases=("context",) if context_phase else ("context", "generation"),
                    fmha_quant_mode_explicit=False,
                    kvcache_quant_mode_explicit=True,
                )
            if context_phase:
                resolve_context_fmha_by_data(
                    cfg, self.model_path, self._db, self.backend, is_context_role=True
                )
            aic_model = get_model(self.model_path, cfg, self.backend)
            sess = InferenceSession(aic_model, self._db, get_backend(self.backend))
        self._sessions[key] = sess
        return sess

    def _run(self, tp: int, isl: int, batch: int, context_phase: bool) -> dict[str, Any]:
        from aiconfigurator.sdk.config import RuntimeConfig

        try:
            sess = self._session(tp, context_phase)
            rc = RuntimeConfig(batch_size=batch, isl=isl, osl=2)
            mode = "static_ctx" if context_phase else "static_gen"
            with _quiet():
                row = sess.run_static(runtime_config=rc, mode=mode, stride=32).get_result_dict()
        except InputError:
            raise
        except Exception as e:  # AIC raises ValueError/KeyError/RuntimeError for gaps in its data
            raise InputError(
                f"aiconfigurator could not estimate {self.model_path} on {self.system} "
                f"({self.backend} {self.backend_version}, tp={tp}): {type(e).__name__}: {e}"
            ) from None
        if row is None:
            raise InputError(
                f"aiconfigurator returned no result for {self.model_path} tp={tp} isl={isl}"
            )
        return dict(row)

    def aic_record(self) -> dict[str, str]:
        """What AIC ran: system, backend and database version, model path (``profile.json``)."""
        return {
            "system": self.system,
            "backend": self.backend,
            "backend_version": self.backend_version,
            "model_path": self.model_path,
        }

    def fits(self, tp: int) -> bool:
        return self._memory.fits(tp)

    def max_kv_tokens(self, tp: int) -> int:
        return self._memory.max_kv_tokens(tp)

    def prefill(self, tp: int, isl: int) -> EstimatePoint:
        """TTFT (ms) of one request of ``isl`` tokens (AIC ``static_ctx``)."""
        t = float(self._run(tp, int(isl), 1, True)["ttft"])
        return EstimatePoint(t, isl / (t * 1e-3) / tp)

    def decode(self, tp: int, batch: int, context: int) -> EstimatePoint:
        """ITL (ms) of one step of ``batch`` sequences at ``context`` (AIC ``static_gen``)."""
        t = float(self._run(tp, int(context), int(batch), False)["tpot"])
        return EstimatePoint(t, batch / (t * 1e-3) / tp)
