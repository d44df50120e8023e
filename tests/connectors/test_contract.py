"""The connector contract (tests/connectors/contract.py) for none, virtual+file and virtual+etcd."""

from __future__ import annotations

from collections.abc import Hashable

import pytest

from dynamo_plan.adapters.etcd import EtcdStateStore
from dynamo_plan.adapters.state_file import FileStateStore
from dynamo_plan.connectors.base import ServingReplicas
from dynamo_plan.connectors.none import ObserveOnlyConnector
from dynamo_plan.connectors.virtual import VirtualConnector
from dynamo_plan.connectors.virtual_client import VirtualClient
from dynamo_plan.connectors.virtual_state import StateStore
from tests.connectors.contract import check_connector_contract


class NothingEnvironment:
    """The observe-only connector's environment: nothing changes, nothing is reported."""

    def carry_out(self) -> None:
        return None

    def serving(self) -> ServingReplicas | None:
        return None

    def revision(self) -> Hashable:
        return 0


class VirtualEnvironment:
    """The environment's side of a virtual store: carries out by acknowledging the latest."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.client = VirtualClient(store)
        self.serving_now: ServingReplicas | None = None

    def carry_out(self) -> None:
        state = self.client.complete()
        self.serving_now = ServingReplicas(state.num_prefill_workers, state.num_decode_workers)

    def serving(self) -> ServingReplicas | None:
        return self.serving_now

    def revision(self) -> Hashable:
        return self.store.read()


def test_observe_only_connector_meets_the_contract() -> None:
    outcomes = check_connector_contract(
        ObserveOnlyConnector(), NothingEnvironment(), observes=False
    )
    assert {o.status for o in outcomes} == {"observed"}
    assert "would scale to prefill=1 decode=1" in outcomes[0].detail


@pytest.mark.parametrize("backend", ["file", "etcd"])
def test_virtual_connector_meets_the_contract(backend: str, request: pytest.FixtureRequest) -> None:
    store: FileStateStore | EtcdStateStore = request.getfixturevalue(f"{backend}_store")
    outcomes = check_connector_contract(VirtualConnector(store), VirtualEnvironment(store))
    written = [o.decision_id for o in outcomes if o.status == "applied"]
    assert written == list(range(len(written)))  # consecutive ids from 0
    assert {o.status for o in outcomes} == {"applied", "unchanged"}
