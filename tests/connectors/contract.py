"""The contract every connector honours, as one reusable check: :func:`check_connector_contract`.

Run it against a freshly built connector and the environment it drives (a
:class:`ContractEnvironment`: for the virtual connector the environment's side of its store, for
Kubernetes the cluster stand-in). It checks, in order:

1. ``isinstance(connector, Connector)`` and ``connector.name`` is a non-empty ``str``;
   ``connector.check()`` returns ``None`` (the settings used here work) and changes nothing in
   the environment; ``connector.engine_gpus()`` is ``None`` or a (prefill, decode) pair of
   ints >= 1;
2. for each target in ``targets``: ``apply`` returns a :class:`ScaleOutcome` with a valid
   status (one of :data:`ScaleStatus`), a non-empty one-line ``detail`` and an ``int | None``
   ``decision_id``; the first apply of a new target is not ``waiting`` nor ``unchanged``
   (the environment carried out the previous one);
3. after ``env.carry_out()``: ``connector.observe()`` equals the target and ``env.serving()``
   (or, with ``observes=False``, for connectors that never observe, such as ``none``:
   ``observe()`` is ``None``);
4. applying the same target again writes nothing: ``env.revision()`` is unchanged and the
   status is ``unchanged`` (``observed`` for observe-only connectors).

Usage (a Kubernetes connector test would do the same with its own environment)::

    from tests.connectors.contract import check_connector_contract
    check_connector_contract(MyConnector(...), MyEnvironment(...))
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Protocol, get_args

from dynamo_plan.connectors.base import (
    Connector,
    ScaleOutcome,
    ScaleStatus,
    ScaleTarget,
    ServingReplicas,
)

__all__ = ["DEFAULT_TARGETS", "ContractEnvironment", "check_connector_contract"]

#: (prefill, decode) targets applied in turn; the first differs from any initial state used here.
DEFAULT_TARGETS: tuple[tuple[int, int], ...] = ((1, 1), (2, 3), (1, 2))


class ContractEnvironment(Protocol):
    """What the contract needs from the environment a connector drives."""

    def carry_out(self) -> None:
        """Act on the last target the connector applied (scale, acknowledge, mark Ready...);
        a no-op for environments with nothing to do (observe-only)."""
        ...

    def serving(self) -> ServingReplicas | None:
        """Replicas the environment itself says serve now (``None`` if it does not say)."""
        ...

    def revision(self) -> Hashable:
        """A token that changes whenever the connector writes anything (the stored state, a
        resourceVersion); used to check that a repeated target writes nothing."""
        ...


def _check_outcome(outcome: object, where: str) -> ScaleOutcome:
    assert isinstance(outcome, ScaleOutcome), f"{where}: apply returned {outcome!r}"
    assert outcome.status in get_args(ScaleStatus), f"{where}: status {outcome.status!r}"
    assert isinstance(outcome.detail, str), f"{where}: detail {outcome.detail!r}"
    assert outcome.detail.strip(), f"{where}: empty detail"
    assert "\n" not in outcome.detail, f"{where}: detail is not one line: {outcome.detail!r}"
    assert outcome.decision_id is None or isinstance(outcome.decision_id, int), where
    return outcome


def _check_engine_gpus(gpus: object, where: str) -> None:
    if gpus is None:
        return
    assert isinstance(gpus, tuple) and len(gpus) == 2, f"{where}: {gpus!r}, want None or a pair"
    for n in gpus:
        assert type(n) is int and n >= 1, f"{where}: {gpus!r}, want GPU counts >= 1"


def check_connector_contract(
    connector: Connector,
    env: ContractEnvironment,
    observes: bool = True,
    targets: Sequence[tuple[int, int]] = DEFAULT_TARGETS,
) -> list[ScaleOutcome]:
    """Assert the connector contract (module docstring) and return every outcome, in order.

    ``observes=False`` for connectors whose ``observe()`` is always ``None``. ``targets`` are the
    (prefill, decode) pairs applied in turn; consecutive pairs must differ.
    """
    assert isinstance(connector, Connector), f"{connector!r} does not implement Connector"
    assert isinstance(connector.name, str) and connector.name, f"name {connector.name!r}"
    before_check = env.revision()
    assert connector.check() is None, f"{connector.name}: check() returned a value"
    assert env.revision() == before_check, f"{connector.name}: check() changed the environment"
    _check_engine_gpus(connector.engine_gpus(), f"{connector.name}: engine_gpus()")
    outcomes: list[ScaleOutcome] = []
    for prefill, decode in targets:
        target = ScaleTarget(prefill, decode, "contract")
        where = f"{connector.name}: apply(prefill={prefill}, decode={decode})"
        first = _check_outcome(connector.apply(target), where)
        assert first.status not in ("waiting", "unchanged"), f"{where}: {first}"
        outcomes.append(first)
        env.carry_out()
        seen = connector.observe()
        if observes:
            expected = ServingReplicas(prefill, decode)
            assert seen == expected, f"{where}: observe() {seen} after carry_out, want {expected}"
            assert env.serving() == expected, f"{where}: environment serves {env.serving()}"
        else:
            assert seen is None, f"{where}: observe() {seen}, want None (observes=False)"
        before = env.revision()
        again = _check_outcome(connector.apply(target), f"{where} again")
        assert again.status in ("unchanged", "observed"), f"{where} again: {again}"
        assert env.revision() == before, f"{where} again: the environment changed"
        outcomes.append(again)
    return outcomes
