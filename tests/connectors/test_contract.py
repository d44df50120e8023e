"""The connector contract (tests/connectors/contract.py) for none, virtual+file and virtual+etcd."""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path

import pytest

from dynamo_plan.adapters.etcd import EtcdClient, EtcdStateStore
from dynamo_plan.adapters.state_file import FileStateStore
from dynamo_plan.adapters.virtual_state import StateStore
from dynamo_plan.connectors.base import Connector, ScaleOutcome, ScaleTarget, ServingReplicas
from dynamo_plan.connectors.none import ObserveOnlyConnector
from dynamo_plan.connectors.virtual import VirtualConnector
from dynamo_plan.connectors.virtual_client import VirtualClient
from dynamo_plan.errors import InputError
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


def test_connectors_without_a_deployment_declare_no_engine_gpus(file_store: StateStore) -> None:
    """``engine_gpus()`` is a Connector member: ``None`` where there is no deployment to read."""
    for connector in (ObserveOnlyConnector(), VirtualConnector(file_store)):
        assert isinstance(connector, Connector)
        assert connector.engine_gpus() is None


def test_a_connector_without_check_or_engine_gpus_is_not_a_connector() -> None:
    class Partial:
        name = "partial"

        def observe(self) -> ServingReplicas | None:
            return None

        def apply(self, target: ScaleTarget) -> ScaleOutcome:
            return ScaleOutcome("observed", "x")

    class WithCheck(Partial):
        def check(self) -> None:
            return None

    class WithBoth(WithCheck):
        def engine_gpus(self) -> tuple[int, int] | None:
            return None

    assert not isinstance(Partial(), Connector)
    assert not isinstance(WithCheck(), Connector)
    assert isinstance(WithBoth(), Connector)


def test_virtual_connector_check_is_its_stores_writable_check(tmp_path: Path) -> None:
    """``check()`` refuses a ``--state`` path that cannot hold the state (InputError, before the
    first tick); etcd has nothing local to check."""
    folder = tmp_path / "missing"
    with pytest.raises(InputError, match="virtual state"):
        VirtualConnector(FileStateStore(folder / "state.json")).check()
    VirtualConnector(FileStateStore(tmp_path / "state.json")).check()
    assert list(tmp_path.iterdir()) == []  # the probe leaves nothing behind
    VirtualConnector(EtcdStateStore(EtcdClient("http://127.0.0.1:1"), "ns")).check()  # no I/O


@pytest.mark.parametrize("backend", ["file", "etcd"])
def test_virtual_connector_meets_the_contract(backend: str, request: pytest.FixtureRequest) -> None:
    store: FileStateStore | EtcdStateStore = request.getfixturevalue(f"{backend}_store")
    outcomes = check_connector_contract(VirtualConnector(store), VirtualEnvironment(store))
    written = [o.decision_id for o in outcomes if o.status == "applied"]
    assert written == list(range(len(written)))  # consecutive ids from 0
    assert {o.status for o in outcomes} == {"applied", "unchanged"}
