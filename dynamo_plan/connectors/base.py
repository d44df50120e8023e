"""The connector interface: what ``plan run`` calls to read and change the replicas serving.

A connector is constructed without I/O (no file written, no socket opened) and then used once
per planner tick::

    serving = connector.observe()          # replicas serving now, or None (unknown)
    outcome = connector.apply(target)      # ScaleOutcome, or raises ExternalServiceError

and once at start ``connector.check()`` (settings that cannot work, from local files only) and
``connector.engine_gpus()``: the GPUs per engine the deployment declares, or ``None`` when the
connector has no deployment to read them from (``plan run`` keeps its flags).

``observe`` returning ``None`` means the environment did not say (the planner then plans from its
own last decision). Failures of the outside service raise a subclass of
:class:`~dynamo_plan.errors.ExternalServiceError` (``StateStoreError`` for the virtual state,
``ClusterError`` for Kubernetes); the loop reports them, keeps running and retries on the next
tick, so ``apply`` must leave nothing half-written (one transaction / one atomic replace).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

__all__ = ["Connector", "ScaleOutcome", "ScaleStatus", "ScaleTarget", "ServingReplicas"]

#: ``applied``: the change was written; ``unchanged``: the target equals what is asked already,
#: nothing written; ``waiting``: not written because the previous decision is not acknowledged
#: yet; ``forced``: written although the previous decision was never acknowledged (timeout);
#: ``observed``: logged only (the observe-only connector).
ScaleStatus = Literal["applied", "unchanged", "waiting", "forced", "observed"]


@dataclass(frozen=True)
class ScaleTarget:
    """Replicas the planner wants per role and its machine-readable reason
    (a :data:`dynamo_plan.core.planner.DecisionReason`)."""

    prefill: int
    decode: int
    reason: str


@dataclass(frozen=True)
class ServingReplicas:
    """Replicas per role the environment reports as serving now (ready, not starting)."""

    prefill: int
    decode: int


@dataclass(frozen=True)
class ScaleOutcome:
    """What ``apply`` did: ``status``, one human line ``detail`` and, for the virtual connector,
    the ``decision_id`` written (or waited on)."""

    status: ScaleStatus
    detail: str
    decision_id: int | None = None


@runtime_checkable
class Connector(Protocol):
    """Reads and changes the replicas of one deployment."""

    name: str

    def observe(self) -> ServingReplicas | None:
        """Replicas serving now, or ``None`` when the environment does not say."""
        ...

    def apply(self, target: ScaleTarget) -> ScaleOutcome:
        """Ask for ``target``; raise ``ExternalServiceError`` when the outside service fails."""
        ...

    def check(self) -> None:
        """Preflight before the first tick, from local files only: raise
        :class:`~dynamo_plan.errors.InputError` for settings that cannot work (an unusable
        ``--state`` path). An unreachable service is not a setting error: never I/O here."""
        ...

    def engine_gpus(self) -> tuple[int, int] | None:
        """GPUs per engine (one replica) of (prefill, decode) as the deployment declares them,
        or ``None`` when this connector cannot say (no deployment to read). May read the
        environment (``ExternalServiceError`` on failure)."""
        ...
