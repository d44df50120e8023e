"""The profiling intent of a DGDR (DESIGN.md §3), projected from the one DGDR model.

:func:`read_dgdr` reads the file with :func:`dynamo_plan.deploy.dgdr_model.read_dgdr_file` (every
spelling: v1alpha1 snake_case or camelCase, v1beta1) and keeps what profiling needs: model,
backend, the SLA (tokens, ms) and the estimator hints (system, HF id, backend version).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dynamo_plan.deploy.dgdr_model import DgdrSpec, read_dgdr_file

__all__ = ["DgdrIntent", "intent_of", "read_dgdr"]


@dataclass(frozen=True)
class DgdrIntent:
    """What a DGDR asks profiling for: model, backend, SLA (tokens, ms), estimator hints."""

    model: str
    backend: str
    isl: int
    osl: int
    ttft_ms: float
    itl_ms: float
    system: str | None = None
    hf_id: str | None = None
    backend_version: str | None = None
    use_ai_configurator: bool = False

    @property
    def estimator_model(self) -> str:
        """The model id the estimator should use (``aicHfId`` when given)."""
        return self.hf_id or self.model


def intent_of(spec: DgdrSpec) -> DgdrIntent:
    """The profiling intent of a read DGDR; DgdrError when it lacks a TTFT or ITL target.

    A v1beta1 ``backend: auto`` is profiled as vllm (:meth:`DgdrSpec.concrete_backend`)."""
    isl, osl, ttft, itl = spec.sla()
    return DgdrIntent(
        model=spec.model,
        backend=spec.concrete_backend(),
        isl=isl,
        osl=osl,
        ttft_ms=ttft,
        itl_ms=itl,
        system=spec.aic_system,
        hf_id=spec.aic_hf_id,
        backend_version=spec.aic_backend_version,
        use_ai_configurator=spec.use_ai_configurator,
    )


def read_dgdr(path: Path) -> DgdrIntent:
    """The profiling intent of the DGDR in ``path``; InputError ``FILE:LINE: field: message``."""
    return intent_of(read_dgdr_file(path)[0])
