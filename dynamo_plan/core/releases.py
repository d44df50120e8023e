"""The Dynamo releases whose resources this project reads and writes, declared once.

Each release is named by its minor version (``--dynamo-version 0.6|0.9|1.5``); the real CRDs and
example DGDs of each are in ``tests/data/dynamo/<full version>/`` (0.6.1, 0.9.0, 1.5.0).

* 0.6 — DGDR and DGD ``nvidia.com/v1alpha1``; the DGDR's sweep keys in snake_case
  (``use_ai_configurator``); no scaling adapters.
* 0.9 — DGDR and DGD ``v1alpha1``; camelCase sweep keys, ``useMocker``; the
  DynamoGraphDeploymentScalingAdapter (DGDSA) with a ``scale`` subresource.
* 1.5 — DGDR and DGD stored as ``nvidia.com/v1beta1`` (v1alpha1 still served, deprecated); the
  DGD's ``spec.components`` list; DGDSA.

Imports nothing, so ``--help`` stays quick.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["NEWEST_RELEASE", "DynamoRelease"]


class DynamoRelease(StrEnum):
    """A supported Dynamo release, by minor version (the ``--dynamo-version`` choices)."""

    v0_6 = "0.6"
    v0_9 = "0.9"
    v1_5 = "1.5"

    @property
    def full_version(self) -> str:
        """The release whose CRDs this project is checked against (``tests/data/dynamo/<it>``)."""
        return {"0.6": "0.6.1", "0.9": "0.9.0", "1.5": "1.5.0"}[self.value]

    @property
    def api_version(self) -> str:
        """The apiVersion this release stores DGDRs and DGDs as."""
        return "nvidia.com/v1beta1" if self is DynamoRelease.v1_5 else "nvidia.com/v1alpha1"

    @property
    def has_scaling_adapters(self) -> bool:
        """Whether the release has DynamoGraphDeploymentScalingAdapter (0.9 and later)."""
        return self is not DynamoRelease.v0_6


#: the default of ``--dynamo-version`` when neither the flag nor the cluster says
NEWEST_RELEASE = DynamoRelease.v1_5
