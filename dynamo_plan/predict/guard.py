"""Safe combination of a challenger forecast with the last value: a test-gated (A,B)-Prod.

The combined one-step forecast is ``b_t + s_t (a_t - b_t)``: the benchmark ``b`` (the last value,
i.e. ``constant``) moved a fraction ``s_t`` in ``[0, 1]`` toward the challenger ``a`` (the
error-weighted blend of :mod:`dynamo_plan.predict.ensemble`).

Evidence: the betting wealth ``K_t = prod_{u < t} (1 + eta d_u)`` (``eta`` 1/2) of the normalised
loss differentials

    d_u = (|y_u - b_u| - |y_u - a_u|) / S_u,   S_u = max |a_v - b_v| over the last
    ``scale_window`` comparisons v <= u,

so ``|d_u| <= 1`` by the triangle inequality (``S_u`` is known before ``y_u``: predictable).
While the blend is no better than the last value (``E[d_u | past] <= 0``), ``K`` is a
non-negative supermartingale, a betting e-process (Shafer & Vovk 2019, "Game-theoretic
foundations for probability and finance"; Waudby-Smith & Ramdas 2023, JRSS-B, "Estimating means
of bounded random variables by betting"), and Ville's inequality gives
``P(sup_t K_t >= 1/alpha) <= alpha`` however often it is checked (a repeated Diebold-Mariano
test has no such guarantee: its false-switch rate grows with every look).

Rule:

- ``s_t = 0`` before ``min_compare`` comparisons (30: the usual minimum for comparing forecast
  accuracy by mean loss differentials, Diebold & Mariano 1995; Harvey, Leybourne & Newbold 1997)
  and while ``K_t < 1/alpha``: on a series where the blend has no edge, ``default`` equals
  ``constant`` exactly, at every step, with probability >= ``1 - alpha`` (95 %);
- otherwise the (A,B)-Prod weight of Sani, Neu & Lazaric (2014, "Exploiting easy data in online
  optimization", NIPS) with prior weight ``alpha`` on A and learning rate ``eta``:
  ``s_t = alpha K_t / (alpha K_t + 1 - alpha)`` (>= 1/2 at the gate). Ungated, this weight's
  cumulative absolute error exceeds the last value's by at most ``S ln(1/(1 - alpha)) / eta``
  (≈ 0.1 S: a tenth of one blend-vs-last gap over the whole run; absolute loss is convex, so the
  combined forecast does at least as well as the mixture the bound is about), and the blend's by
  at most ``S (eta sum d^2 + ln(1/alpha) / eta)``;
- ``K`` is clipped so that ``s_t <= max_weight`` (0.95): evidence from an old regime can then be
  overturned within ``ln(19 / 1) / ln(1/(1 - eta |d|))`` bad comparisons (about 8 at ``|d| = 1``).
  Clipping only lowers the challenger's weight, so the bound against the last value is kept.
"""

from __future__ import annotations

import math
from collections import deque

from dynamo_plan.errors import InputError

__all__ = ["ProdGuard"]


class ProdGuard:
    """Weight ``s_t`` of a challenger forecast against the last value (module docstring)."""

    def __init__(
        self,
        min_compare: int = 30,
        alpha: float = 0.05,
        eta: float = 0.5,
        max_weight: float = 0.95,
        scale_window: int = 50,
    ) -> None:
        if (
            min_compare < 0
            or not 0.0 < alpha < 1.0
            or not 0.0 < eta <= 0.5
            or not 0.5 <= max_weight <= 1.0
            or scale_window < 1
        ):
            raise InputError(
                "guard: need min_compare >= 0, 0 < alpha < 1, 0 < eta <= 0.5, "
                f"0.5 <= max_weight <= 1, scale_window >= 1; got {min_compare}, {alpha}, {eta}, "
                f"{max_weight}, {scale_window}"
            )
        self.min_compare, self.alpha, self.eta = min_compare, alpha, eta
        self.max_weight, self.scale_window = max_weight, scale_window
        self._log_gate = math.log(1.0 / alpha)
        self._logit_prior = math.log(alpha / (1.0 - alpha))
        # s <= max_weight  <=>  log K + logit(alpha) <= logit(max_weight)
        self._log_cap = (
            math.inf
            if max_weight >= 1.0
            else math.log(max_weight / (1.0 - max_weight)) - self._logit_prior
        )
        self._gaps: deque[float] = deque(maxlen=scale_window)
        self.log_wealth = 0.0
        """``ln K_t``: the evidence (in nats) that the challenger beats the last value."""
        self.compared = 0
        """Comparisons scored so far."""

    def weight(self) -> float:
        """``s_t`` in ``[0, max_weight]``: 0 before ``min_compare`` comparisons or below the gate."""
        if self.compared < self.min_compare or self.log_wealth < self._log_gate:
            return 0.0
        return 1.0 / (1.0 + math.exp(-(self.log_wealth + self._logit_prior)))

    def update(self, actual: float, challenger: float, benchmark: float) -> None:
        """Score the one-step forecasts ``challenger`` and ``benchmark`` once ``actual`` is known."""
        self.compared += 1
        self._gaps.append(abs(challenger - benchmark))
        scale = max(self._gaps)
        if scale <= 0.0:
            return  # identical forecasts so far: no evidence either way
        d = (abs(actual - benchmark) - abs(actual - challenger)) / scale
        self.log_wealth = min(self.log_wealth + math.log1p(self.eta * d), self._log_cap)
