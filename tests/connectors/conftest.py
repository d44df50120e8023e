"""Fixtures of the connector tests: one real etcd per test module, a fresh namespace per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dynamo_plan.adapters.etcd import EtcdClient, EtcdStateStore
from dynamo_plan.adapters.state_file import FileStateStore
from tests.servers import ServerProcess, start_etcd


@pytest.fixture(scope="module")
def etcd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real etcd shared by the tests of one module (each test uses its own namespace)."""
    server = start_etcd(tmp_path_factory.mktemp("etcd"), max_lifetime_s=300)
    yield server
    server.stop()


@pytest.fixture
def etcd_store(etcd_server: ServerProcess) -> Iterator[EtcdStateStore]:
    """An etcd state store in a namespace of its own."""
    store = EtcdStateStore(EtcdClient(etcd_server.url), f"test-{uuid.uuid4().hex[:12]}")
    yield store
    store.close()


@pytest.fixture
def file_store(tmp_path: Path) -> FileStateStore:
    return FileStateStore(tmp_path / "virtual.json")
