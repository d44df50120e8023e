"""The observe-only connector: logs what the planner would do and changes nothing."""

from __future__ import annotations

from dynamo_plan.connectors.base import ScaleOutcome, ScaleTarget, ServingReplicas

__all__ = ["ObserveOnlyConnector"]


class ObserveOnlyConnector:
    """Connector ``none``: never reads nor writes anything; ``observe`` is always ``None``."""

    name = "none"

    def observe(self) -> ServingReplicas | None:
        """Always ``None``: this connector has no environment to ask."""
        return None

    def check(self) -> None:
        """Nothing to check: no settings, no environment."""
        return None

    def engine_gpus(self) -> tuple[int, int] | None:
        """Always ``None``: no deployment to read GPUs per engine from."""
        return None

    def apply(self, target: ScaleTarget) -> ScaleOutcome:
        """``observed``: the planner's target, written nowhere."""
        return ScaleOutcome(
            "observed",
            f"would scale to prefill={target.prefill} decode={target.decode} (observe-only)",
        )
