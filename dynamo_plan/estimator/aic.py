"""Adapter to NVIDIA aiconfigurator (optional, ~850 MB with its perf databases; never a test or
CI dependency). Same interface and outputs as the roofline estimator; the API calls follow
Dynamo's ``benchmarks/profiler/utils/estimate_perf.py`` (``perf_database.get_database``,
``InferenceSession.run_static``: ``context_latency`` = TTFT ms, ``tpot`` = ITL ms).
"""

from __future__ import annotations

import importlib.util
from typing import Any

from dynamo_plan.core.backends import BackendName
from dynamo_plan.errors import InputError
from dynamo_plan.estimator.arch import GpuSpec, ModelArch
from dynamo_plan.estimator.base import Dtype, EstimatePoint
from dynamo_plan.estimator.catalog import model_entry
from dynamo_plan.estimator.roofline import RooflineEstimator

INSTALL_HINT = (
    "the aiconfigurator estimator needs the 'aiconfigurator' package (~850 MB with its "
    "performance databases): pip install aiconfigurator; or use the built-in estimator "
    "(--estimator roofline)"
)
DEFAULT_VERSION = {"trtllm": "0.20.0", "vllm": "0.10.1", "sglang": "0.5.0"}


def aiconfigurator_available() -> bool:
    """True when ``import aiconfigurator`` would succeed (checked without importing it)."""
    return importlib.util.find_spec("aiconfigurator") is not None


class AiConfiguratorEstimator:
    """Estimator backed by aiconfigurator's measured kernel databases.

    Memory (``fits``/``max_kv_tokens``) uses the roofline accounting, so the two estimators
    agree on what fits; latencies come from aiconfigurator.
    """

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
    ) -> None:
        if not aiconfigurator_available():
            raise InputError(INSTALL_HINT)
        try:
            self._aic_model = str(model_entry(model.name).get("aic_name") or "")
        except InputError:
            self._aic_model = ""
        if not self._aic_model:
            raise InputError(
                f"model '{model.name}' has no aiconfigurator name (aic_name in models.yaml)"
            )
        self._memory = RooflineEstimator(model, gpu, backend, dtype, kv_dtype, mem_util)
        self._backend = backend
        self._system = gpu.name
        self._dtype = dtype
        self._kv_dtype = kv_dtype or dtype
        self.version = backend_version or DEFAULT_VERSION[backend]
        self._db: Any = None

    def _run(self, tp: int, isl: int, osl: int, batch: int, mode: str) -> dict[str, Any]:
        import aiconfigurator.sdk.backends.factory as factory
        import aiconfigurator.sdk.config as aic_config
        import aiconfigurator.sdk.inference_session as session
        import aiconfigurator.sdk.models as aic_models
        import aiconfigurator.sdk.perf_database as perf_database

        if self._db is None:
            self._db = perf_database.get_database(
                system=self._system, backend=self._backend, version=self.version
            )
            if not self._db:
                raise InputError(
                    f"aiconfigurator has no database for system '{self._system}', "
                    f"backend '{self._backend}', version '{self.version}'"
                )
        kwargs: dict[str, Any] = {"tp_size": tp}
        if self._memory.model.is_moe:
            kwargs.update(moe_tp_size=tp, moe_ep_size=1)
        model = aic_models.get_model(self._aic_model, aic_config.ModelConfig(**kwargs))
        rc = aic_config.RuntimeConfig(batch_size=batch, beam_width=1, isl=isl, osl=osl)
        sess = session.InferenceSession(model, self._db, factory.get_backend(self._backend))
        summary = sess.run_static(mode=mode, runtime_config=rc, stride=32)
        row: dict[str, Any] = summary.get_summary_df().to_dict(orient="records")[0]
        return row

    def fits(self, tp: int) -> bool:
        return self._memory.fits(tp)

    def max_kv_tokens(self, tp: int) -> int:
        return self._memory.max_kv_tokens(tp)

    def prefill(self, tp: int, isl: int) -> EstimatePoint:
        t = float(self._run(tp, isl, 5, 1, "static_ctx")["context_latency"])
        return EstimatePoint(t, isl / (t * 1e-3) / tp)

    def decode(self, tp: int, batch: int, context: int) -> EstimatePoint:
        t = float(self._run(tp, context, 2, batch, "static_gen")["tpot"])
        return EstimatePoint(t, batch / (t * 1e-3) / tp)
