"""Building a DynamoGraphDeploymentRequest from flags (``dgdr create``), as data, never as text.

The document is a plain dict dumped with ``yaml.safe_dump``; :func:`build_dgdr` checks it with
the shipped schema and raises InputError naming the flag of the first bad field.
"""

from __future__ import annotations

from typing import Any

import yaml

from dynamo_plan.deploy.dgdr import API_VERSION, KIND, check_document
from dynamo_plan.errors import InputError, UsageError

__all__ = ["FLAG_OF_PATH", "build_dgdr", "dump_dgdr"]

_CONFIG = "spec.profilingConfig.config"
FLAG_OF_PATH = {
    "metadata.name": "--name",
    "metadata.namespace": "--namespace",
    "spec.model": "--model",
    "spec.backend": "--backend",
    "spec.profilingConfig.profilerImage": "--profiler-image",
    "spec.deploymentOverrides.workersImage": "--workers-image",
    f"{_CONFIG}.sla.isl": "--isl",
    f"{_CONFIG}.sla.osl": "--osl",
    f"{_CONFIG}.sla.ttft": "--ttft",
    f"{_CONFIG}.sla.itl": "--itl",
    f"{_CONFIG}.sweep.aicSystem": "--system",
    f"{_CONFIG}.sweep.aicHfId": "--model",
}


def build_dgdr(
    *,
    name: str,
    model: str,
    backend: str,
    isl: int,
    osl: int,
    ttft_ms: float,
    itl_ms: float,
    profiler_image: str,
    offline: bool = False,
    system: str | None = None,
    auto_apply: bool = False,
    use_mocker: bool = False,
    workers_image: str | None = None,
    namespace: str | None = None,
) -> dict[str, Any]:
    """A DGDR asking for ``model`` on ``backend`` under the SLA (isl/osl tokens, ttft/itl ms).

    ``offline`` selects the estimator path: ``sweep.useAiConfigurator: true`` with ``aicSystem``
    = ``system`` (required) and ``aicHfId`` = ``model``. ``use_mocker`` sets the CRD's
    ``spec.deployMocker`` (DESIGN.md calls it useMocker; the Dynamo CRD's field is deployMocker).
    """
    if offline and not system:
        raise UsageError("--offline needs --system (the estimator's GPU system, e.g. h200_sxm)")
    if system and not offline:
        raise UsageError("--system is used by --offline profiling only; add --offline")
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    config: dict[str, Any] = {"sla": {"isl": isl, "osl": osl, "ttft": ttft_ms, "itl": itl_ms}}
    if offline:
        config["sweep"] = {"useAiConfigurator": True, "aicSystem": system, "aicHfId": model}
    spec: dict[str, Any] = {
        "model": model,
        "backend": backend,
        "profilingConfig": {"profilerImage": profiler_image, "config": config},
        "autoApply": auto_apply,
        "deployMocker": use_mocker,
    }
    if workers_image is not None:
        spec["deploymentOverrides"] = {"workersImage": workers_image}
    doc = {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}
    errors, _ = check_document(doc)
    if errors:
        first = errors[0]
        flag = FLAG_OF_PATH.get(first.path, first.path)
        raise InputError(f"{flag}: {first.message}")
    return doc


def dump_dgdr(doc: dict[str, Any]) -> str:
    """YAML text of a DGDR, keys in the order built; non-ASCII characters escaped, so that
    characters YAML reads as line breaks (U+0085, U+2028) survive a round trip."""
    return yaml.safe_dump(doc, sort_keys=False)
