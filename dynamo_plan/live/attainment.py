"""``plan run --sla-attainment A``: the recent request shapes the
:class:`~dynamo_plan.sim.attainment.AttainmentSizer` draws its sample from, kept current from the
frontend's ISL/OSL histograms in Prometheus.

Before each decision :meth:`ShapeFeed.refresh` reads both histograms over the last
``window_s`` (:meth:`~dynamo_plan.adapters.prometheus.PrometheusClient.token_histograms`) and
gives the sizer :data:`SAMPLES` (ISL, OSL) pairs drawn from them. The histograms are marginal,
so ISL and OSL are drawn independently (a trace keeps them paired; a histogram cannot).
Until a window has requests the shapes are the prior: the warm-up trace's requests, else every
request at the SLA's ISL/OSL. When Prometheus fails the last shapes are kept and the origin says
so; the loop goes on.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from dynamo_plan.core.token_histogram import TokenHistogram
from dynamo_plan.errors import ExternalServiceError
from dynamo_plan.sim.attainment import AttainmentSizer

__all__ = ["SAMPLES", "ShapeFeed", "TokenHistogramSource"]

#: (ISL, OSL) pairs drawn from the histograms at each refresh.
SAMPLES = 4096


@runtime_checkable
class TokenHistogramSource(Protocol):
    """Where the token histograms come from (the Prometheus adapter)."""

    def token_histograms(self, window_s: float) -> dict[str, TokenHistogram] | None: ...


class ShapeFeed:
    """Keeps ``sizer``'s shapes current from ``source`` (module docstring). ``prior``: (ISL,
    OSL) arrays used until a window has requests, ``prior_origin`` says what they are."""

    def __init__(
        self,
        sizer: AttainmentSizer,
        source: TokenHistogramSource,
        window_s: float,
        prior: tuple[np.ndarray, np.ndarray],
        prior_origin: str,
        seed: int = 0,
    ) -> None:
        self.sizer = sizer
        self.source = source
        self.window_s = window_s
        self.rng = np.random.default_rng(seed)
        self.sizer.observe(*prior, origin=prior_origin)
        self.measured = prior_origin

    @property
    def origin(self) -> str:
        """Where the sizer's shapes came from (and why they were kept, if they were)."""
        return self.sizer.origin

    def refresh(self) -> None:
        """Read the histograms and hand the sizer a fresh sample (module docstring)."""
        try:
            hists = self.source.token_histograms(self.window_s)
        except ExternalServiceError as e:
            self.sizer.origin = f"{self.measured}, kept: token histograms unavailable ({e})"
            return
        if hists is None:
            self.sizer.origin = (
                f"{self.measured}, kept: no requests in the last {self.window_s:g} s"
            )
            return
        self.measured = (
            f"frontend histograms of the last {self.window_s:g} s "
            f"({hists['isl'].requests:.0f} requests)"
        )
        isl = hists["isl"].sample(SAMPLES, self.rng)
        osl = hists["osl"].sample(SAMPLES, self.rng)
        self.sizer.observe(isl, osl, origin=self.measured)
